"""`python -m tinymem.tools.make_synthetic`: the command line writes the world."""

from tinymem.data.ava.formats import read_label_map
from tinymem.tools.make_synthetic import main


def test_cli(tmp_path, capsys):
    out = tmp_path / "cli"
    args = [f"out={out}", "num_train_videos=1", "num_val_videos=1", "episodes_per_video=1"]
    assert main([*args, "colours=red,blue"]) == 0
    assert "wrote 2 videos" in capsys.readouterr().out
    assert read_label_map(out / "annotations" / "action_list.pbtxt")[4] == "use (the blue object)"
    assert main([f"out={out}", "bogus=1"]) == 2
    assert "unknown key 'bogus'" in capsys.readouterr().err
    assert main([f"out={out}", "seed=abc"]) == 2
    assert "seed: expected an integer" in capsys.readouterr().err
    assert main(["seed=1"]) == 2
    assert "missing out=DIR" in capsys.readouterr().err
