"""pysf.utils.atomic_files: a file is either fully written or left as it was."""

from __future__ import annotations

import json
import os
import stat

import pytest

from pysf.utils.atomic_files import FileWriteError, write_atomically


def test_write_replaces_the_file_with_the_usual_permissions(tmp_path):
    path = tmp_path / "result.json"
    path.write_text("old")
    write_atomically(str(path), b"new", "the result")
    assert path.read_text() == "new"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's private 0600
    write_atomically(str(path), lambda f: json.dump({"a": 1}, f), "the result", text=True)
    assert json.loads(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["result.json"]


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("old")

    def broken(file):
        file.write("partial")
        raise TypeError("not serializable")

    with pytest.raises(TypeError):
        write_atomically(str(path), broken, "the configuration", text=True)
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["config.json"]


def test_an_os_error_is_one_line_naming_the_file(tmp_path):
    missing_folder = tmp_path / "gone" / "file.bin"
    with pytest.raises(FileWriteError) as info:
        write_atomically(str(missing_folder), b"x", "checkpoint")
    assert str(info.value) == f"No such file or directory while writing checkpoint {missing_folder}"
    extended = info.value.with_consequence("the previous one is intact")
    assert str(extended).endswith("; the previous one is intact") and extended.errno == info.value.errno
