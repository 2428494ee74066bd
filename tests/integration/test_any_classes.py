"""Classes come from the data: a WFDB folder labelled with 2, 3 or 4 class names of its own trains, reports
(window / record / subject, confusion matrices), predicts and evaluates with exactly those classes, in the order
data.classes gives (or sorted when it is null)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hydra.core.global_hydra import GlobalHydra

from emg_lightning.data.datamodule import EMGDataModule
from emg_lightning.data.readers.record_files import read_any
from emg_lightning.data.readers.synthetic import SyntheticSpec, generate
from emg_lightning.inference.export import export_model
from emg_lightning.inference.predict import load_model, predict_record, write_outputs
from emg_lightning.reports.cv_summary import report
from emg_lightning.runtime.errors import ConfigError, DataError
from emg_lightning.training import train

from conftest import compose_train, write_record

# 12 generated subjects; the manifest gives each a class name of this clinic's own (myositis: a fourth class), 3
# subjects per class: with 2 folds each fold trains on 1-2 of a class and validates on another
SPEC = SyntheticSpec(
    subjects_per_class=(("normal", 3), ("als", 3), ("myopathy", 6)), records_per_subject=(2, 2), duration_s=3.0
)
CLINIC_LABEL = {f"SN0{i}": "healthy" for i in (1, 2, 3)} | {f"SA0{i}": "neuropathy" for i in (1, 2, 3)}
CLINIC_LABEL |= {f"SM0{i}": "myopathy" for i in (1, 2, 3)} | {f"SM0{i}": "myositis" for i in (4, 5, 6)}


@pytest.fixture(scope="module")
def clinic(tmp_path_factory):
    """A folder of WFDB records and a manifest with this clinic's class names."""
    folder = tmp_path_factory.mktemp("clinic")
    rows = ["record,subject,label,muscle"]
    for record in generate(SPEC):
        write_record(folder, record.name, record.digital, record.sample_rate, record.adc_gain, "uV")
        rows.append(f"{record.name},{record.subject},{CLINIC_LABEL[record.subject]},deltoid")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def data_overrides(clinic, classes: str) -> list[str]:
    return [
        "data=wfdb",
        f"data.root={clinic}",
        f"data.manifest={clinic / 'labels.csv'}",
        f"data.classes={classes}",
        "data.sample_rate=2343.75",
        "model=qemg",
        "model.inner_folds=2",
        "model.inner_repeats=1",
        "split=group_kfold",
        "split.k=2",
        "logger=none",
        "print_config=false",
    ]


@pytest.mark.parametrize(
    "classes, expected",
    [
        ("[neuropathy,healthy]", ["neuropathy", "healthy"]),
        ("[healthy,neuropathy,myopathy]", ["healthy", "neuropathy", "myopathy"]),
        ("null", ["healthy", "myopathy", "myositis", "neuropathy"]),  # all of the data's labels, sorted
    ],
)
def test_k_classes_train_report_predict_and_evaluate(clinic, tmp_path, classes, expected):
    cv_dir = tmp_path / "cv"
    for fold in range(2):
        try:
            cfg = compose_train(
                [*data_overrides(clinic, classes), f"data.fold={fold}"], cv_dir / "seed_0" / f"fold_0{fold}"
            )
            metrics = train(cfg)
        finally:
            GlobalHydra.instance().clear()
        assert len(metrics["test/confusion"]) == len(expected)
    run = cv_dir / "seed_0" / "fold_00"
    assert json.loads((run / "model_input.json").read_text())["classes"] == expected
    header = (run / "predictions.csv").read_text().splitlines()[0].split(",")
    assert header[-len(expected) :] == [f"p_{c}" for c in expected]

    summary = report(cv_dir)
    assert summary["classes"] == expected
    subjects_per_class = [sum(1 for label in CLINIC_LABEL.values() if label == c) for c in expected]
    for level, per_subject in (("record", 2), ("subject", 1)):  # 2 records per subject
        pooled = summary["pooled"][level]["per_seed"]["0"]
        confusion = np.asarray(pooled["confusion"])
        assert confusion.shape == (len(expected), len(expected))
        assert confusion.sum(axis=1).tolist() == [per_subject * n for n in subjects_per_class]
        assert {f"recall/{c}" for c in expected} <= set(pooled)
    assert (cv_dir / "confusion_matrices.png").is_file()

    model = load_model(cv_dir)  # both fold models, averaged
    assert model.classes == expected and model.training_data["muscles"] == ["deltoid"]
    header = next(clinic.glob("SYNSM05R01.hea"))
    prediction = predict_record(model, read_any(header, "SM05", "myositis"), header)
    assert prediction.probabilities.shape[1] == len(expected)
    assert np.allclose(prediction.probabilities.sum(axis=1), 1.0, atol=1e-5)
    rows = write_outputs(tmp_path / "eval", model, [prediction], labelled=True)
    assert set(rows["records"][0]) >= {f"p_{c}" for c in expected}
    if len(expected) == 4:  # the export contract: K outputs, named in order, the graph agreeing with the model
        report_of_export = export_model(model, tmp_path / "export", ("onnx",))
        assert report_of_export["contract"]["classes"] == expected


def test_a_class_the_data_do_not_hold_is_named_with_the_labels_there(clinic, tmp_path):
    dm = EMGDataModule.from_config(
        {"source": "wfdb", "root": str(clinic), "manifest": str(clinic / "labels.csv"), "classes": ["normal", "als"]},
        cache_dir=str(tmp_path),
    )
    with pytest.raises(DataError) as refused:
        dm.setup()
    assert str(refused.value) == (
        "data.classes=['normal', 'als'] names normal, als, but the data's labels are healthy, myopathy, myositis, "
        "neuropathy: choose among those (or rename labels with data.label_map, e.g. {als: neuropathy})"
    )
    renamed = EMGDataModule.from_config(
        {
            "source": "wfdb",
            "root": str(clinic),
            "manifest": str(clinic / "labels.csv"),
            "classes": ["normal", "als"],
            "label_map": {"healthy": "normal", "neuropathy": "als"},
        },
        cache_dir=str(tmp_path),
    )
    renamed.setup()
    assert renamed.classes == ["normal", "als"] and renamed.subjects == ["SA01", "SA02", "SA03", "SN01", "SN02", "SN03"]


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"classes": ["normal", "normal", "als"]}, "names normal more than once"),
        ({"classes": ["normal"]}, "must name two or more classes"),
        ({"classes": "normal"}, "must be a list of two or more class names"),
        ({"classes": ["normal", "als"], "label_map": {"neuropathy": "myopathy"}}, "renames neuropathy to 'myopathy'"),
        (
            {"source": "hospital"},
            "data.source='hospital' is unknown; available: algiers, emglab, pooled, synthetic, wfdb",
        ),
    ],
)
def test_class_settings_that_cannot_mean_anything_are_refused_before_reading(settings, message):
    with pytest.raises(ConfigError, match=message):
        EMGDataModule.from_config({"source": "synthetic", **settings})
