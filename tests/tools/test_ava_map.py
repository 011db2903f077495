"""`python -m tinymem.tools.ava_map`: the table and mAP it prints, bad input named by line."""

from tinymem.tools.ava_map import main as ava_map_main


def test_command_line_prints_table_and_map(ava_files, capsys):
    args = ["-g", str(ava_files / "gt.csv"), "-d", str(ava_files / "det.csv")]
    args += ["-l", str(ava_files / "labels.pbtxt"), "-e", str(ava_files / "excluded.csv")]
    assert ava_map_main(args) == 0
    out = capsys.readouterr().out
    assert "crouch/kneel" in out and "100.00" in out and "50.00" in out
    assert "frame mAP@0.5: 0.750000" in out
    assert "classes without groundtruth (not in the mean): 4" in out


def test_command_line_reports_bad_input(ava_files, capsys):
    (ava_files / "det.csv").write_text("vid,0902,0.1,0.2,0.3,0.4,1,0.5\nvid,0902,0.1\n")
    args = ["-g", str(ava_files / "gt.csv"), "-d", str(ava_files / "det.csv")]
    assert ava_map_main([*args, "-l", str(ava_files / "labels.pbtxt")]) == 1
    assert f"{ava_files / 'det.csv'}:2: expected 8 columns" in capsys.readouterr().err


def test_command_line_strict_names_the_line(ava_files, capsys):
    args = ["-g", str(ava_files / "gt.csv"), "-d", str(ava_files / "det.csv")]
    args += ["-l", str(ava_files / "labels.pbtxt"), "-e", str(ava_files / "excluded.csv")]
    assert ava_map_main(args) == 0
    assert "detections on excluded keyframes (ignored): 1, first at line 5" in (
        capsys.readouterr().out
    )
    assert ava_map_main([*args, "--strict"]) == 1
    assert f"{ava_files / 'det.csv'}:5: strict: " in capsys.readouterr().err
