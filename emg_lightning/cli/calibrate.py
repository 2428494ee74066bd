"""Compare per-class record statistics of the synthetic generator (or a real EMGLab folder) with N2001's.

python -m emg_lightning.cli.calibrate                 # synthetic, default spec
python -m emg_lightning.cli.calibrate --emglab DIR    # the real recordings, same statistics
"""

from __future__ import annotations

import argparse

from emg_lightning.data.readers import emglab, synthetic
from emg_lightning.data.readers.synthetic.calibration import collect, report
from emg_lightning.runtime.console import one_line_errors


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--emglab", help="an EMGLab N2001 folder instead of the synthetic data")
    parser.add_argument("--seed", type=int, default=0, help="synthetic seed")
    args = parser.parse_args(argv)
    with one_line_errors():
        if args.emglab:
            records = map(emglab.read_record, emglab.list_records(args.emglab))
        else:
            records = synthetic.generate(synthetic.SyntheticSpec(seed=args.seed))
        print(report(collect(records)))


if __name__ == "__main__":
    main()
