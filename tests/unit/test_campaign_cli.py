"""`sutradhar campaign`: bad lists are refused before anything is sent; the progress line."""

from __future__ import annotations

from sutradhar.cli import campaign


def test_a_bad_list_is_refused_locally_with_every_bad_row(tmp_path, capsys) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("number,name\n12345,Asha\n+919876543210,Ravi\n+91 98765 4321x,Meena\n")
    # No server listens on port 9: the list is refused before any request.
    assert campaign.main(["run", str(path), "--url", "http://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert "row 1: number" in err and "row 3: number" in err and "row 2" not in err
    assert campaign.main(["run", str(tmp_path / "absent.csv")]) == 2
    (tmp_path / "numbers.xlsx").write_text("")
    assert campaign.main(["run", str(tmp_path / "numbers.xlsx")]) == 2
    assert ".csv or .json" in capsys.readouterr().err


def test_the_progress_line_shows_the_share_done_and_each_status() -> None:
    line = campaign.progress_line({"total": 4, "done": 1, "retrying": 1, "status": "running",
                                   "counts": {"busy": 1, "completed": 1, "dialing": 2}})
    assert line == ("[#######.......................] 1/4 done  busy=1 completed=1 dialing=2 retrying=1  running")
