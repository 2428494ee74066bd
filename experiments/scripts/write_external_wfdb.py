"""Write some EMGLab N2001 subjects as a foreign WFDB folder: another sampling rate, millivolt headers, other record
names (P<nn>_<A|C|M><k>), so that emg-eval can be tried on data that looks like another clinic's.

    python experiments/scripts/write_external_wfdb.py --subjects A01,A03,C01,C02,M02,M03 --rate 11718.75 --out DIR

Samples are resampled with the framework's own anti-aliased polyphase filter and stored as int16 with the
original ADC resolution, expressed per millivolt (13,107 units per mV instead of 13.107 per uV).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import wfdb

from emg_lightning.data.readers import emglab
from emg_lightning.data.windows import resample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.environ.get("EMGLAB_DIR"), help="EMGLab folder (default: $EMGLAB_DIR)")
    parser.add_argument("--subjects", required=True, help="comma-separated EMGLab subjects, e.g. A01,C01,M02")
    parser.add_argument("--rate", type=float, required=True, help="sampling rate of the written records (Hz)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    wanted = args.subjects.split(",")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    alias = {subject: f"P{i + 1:02d}" for i, subject in enumerate(wanted)}
    count: dict[str, int] = {}
    for header in emglab.list_records(args.root):
        record = emglab.read_record(header)
        if record.subject not in alias:
            continue
        count[record.subject] = count.get(record.subject, 0) + 1
        x = resample(record.digital.astype(np.float64), record.sample_rate, args.rate)
        digital = np.clip(np.round(x), -32768, 32767).astype(np.int16)
        name = f"{alias[record.subject]}_{record.subject[0]}{count[record.subject]}"
        wfdb.wrsamp(
            name, fs=args.rate, units=["mV"], sig_name=["emg"], d_signal=digital[:, None], fmt=["16"],
            adc_gain=[record.adc_gain * 1000.0], baseline=[0], write_dir=str(out),
            comments=[f"source: {record.name}"],
        )  # fmt: skip
    print(f"wrote {sum(count.values())} records of {len(count)} subjects into {out} at {args.rate:g} Hz, in mV")


if __name__ == "__main__":
    main()
