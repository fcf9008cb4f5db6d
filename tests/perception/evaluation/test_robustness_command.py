"""`bulletdrive robustness`, and the robustness options of `bulletdrive train`: bad input is one line
naming the key, exit code 2, nothing written; a run on a tiny dataset writes its files."""

import json

import pytest

from sim.app.cli import main


@pytest.fixture
def place(tmp_path, make_coco, detector_config):
    """(data folder of 64x48 frames, a tiny checkpoint of that size, the output folder that must
    stay absent, a file)."""
    from perception.detection.model import CenterNet, save_checkpoint
    from perception.types import CLASSES

    make_coco(tmp_path / "ds", "val", n_images=3)
    make_coco(tmp_path / "ds", "train", n_images=2)
    config = detector_config(input_height=48, input_width=64)
    save_checkpoint(tmp_path / "tiny.pt", CenterNet(config), config, {"classes": list(CLASSES)})
    (tmp_path / "a_file").write_text("mine")
    return tmp_path / "ds", tmp_path / "tiny.pt", tmp_path / "o", tmp_path / "a_file"


ROBUSTNESS = [
    (["kinds=[snow]"], "snow"),
    (["kinds=fog"], "kinds"),
    (["severities=[4]"], "severities"),
    (["severities=[]"], "severities"),
    (["attack=pgd", "eps=[0]"], "eps"),
    (["attack=pgd", "eps=[]"], "eps"),
    (["eps=[100]"], "eps"),
    (["attack=cw"], "attack"),
    (["steps=0"], "steps"),
    (["max_images=-1"], "max_images"),
    (["attack_images=abc"], "attack_images"),
    (["split=test"], "split"),
    (["batch_size=0"], "batch_size"),
    (["threads=0"], "threads"),
    (["device=tpu"], "device"),
    (["+no_such=1"], "no_such"),
    (["checkpoint=missing.pt"], "missing.pt"),
    (["checkpoint=shipped"], "(320, 192)"),  # the shipped model takes 320x192 frames, these are 64x48
]


@pytest.mark.parametrize("args, word", ROBUSTNESS, ids=[" ".join(a) for a, _ in ROBUSTNESS])
def test_bad_input_to_robustness(args, word, place, cli_error):
    data, checkpoint, out, _ = place
    assert word in cli_error(
        ["robustness", f"data_dir={data}", f"checkpoint={checkpoint}", *args, f"out_dir={out}"]
    )
    assert not out.exists()


def test_robustness_of_a_missing_dataset_or_into_a_file(place, cli_error):
    data, checkpoint, out, a_file = place
    assert "no_data" in cli_error(["robustness", f"data_dir={data.parent / 'no_data'}", f"out_dir={out}"])
    assert "out_dir" in cli_error(
        ["robustness", f"data_dir={data}", f"checkpoint={checkpoint}", f"out_dir={a_file}"]
    )
    assert a_file.read_text() == "mine" and not out.exists()


TRAIN = [
    (["augment.corrupt_kinds=[snow]"], "augment.corrupt_kinds"),
    (["augment.corrupt_p=0.5", "augment.corrupt_kinds=[]"], "augment.corrupt_kinds"),
    (["augment.corrupt_severity=[2,1]"], "augment.corrupt_severity"),
    (["augment.corrupt_severity=[0,5]"], "augment.corrupt_severity"),
    (["augment.corrupt_p=2"], "augment.corrupt_p"),
    (["dropblock.drop_p=1"], "dropblock.drop_p"),
    (["dropblock.block_cells=0"], "dropblock.block_cells"),
    (["adversarial.eps=-1"], "adversarial.eps"),
    (["adversarial.steps=0"], "adversarial.steps"),
    (["adversarial.fraction=2"], "adversarial.fraction"),
    (["init_checkpoint={tmp}/missing.pt"], "missing.pt"),
    (["init_checkpoint=shipped"], "init_checkpoint"),  # another model config than tiny at 48x64
]


@pytest.mark.parametrize("args, word", TRAIN, ids=[" ".join(a) for a, _ in TRAIN])
def test_bad_robustness_options_to_train(args, word, place, cli_error):
    data, _, out, _ = place
    size = ["model=tiny", "model.input_height=48", "model.input_width=64"]
    args = [a.replace("{tmp}", str(data.parent)) for a in args]
    assert word in cli_error(["train", f"data_dir={data}", *size, *args, f"out_dir={out}"])
    assert not out.exists()


def test_robustness_writes_its_results(place, capsys):
    data, checkpoint, out, _ = place
    args = [
        "kinds=[fog,jpeg]",
        "severities=[1,3]",
        "attack=fgsm",
        "eps=[2]",
        "attack_images=2",
        "batch_size=2",
    ]
    assert main(["robustness", f"data_dir={data}", f"checkpoint={checkpoint}", f"out_dir={out}", *args]) == 0
    printed = capsys.readouterr().out
    assert "mPC" in printed and "jpeg quality 10" in printed and "fgsm" in printed
    results = json.loads((out / "robustness.json").read_text())
    assert set(results["corruptions"]) == {"fog", "jpeg"} and results["images"] == 3
    assert list(results["adversarial"]["eps"]) == ["2/255"] and results["adversarial"]["images"] == 2
    assert {"detect", "evaluate", "total"} <= set(results["seconds"])
    assert all(
        (out / name).stat().st_size > 0 for name in ("robustness.txt", "robustness.png", "adversarial.png")
    )
