"""Hostile and broken code packages are refused and nothing is stored."""

import io
import os
import stat
import zipfile

import pytest
from conftest import create, error_of



def zip_with(entries):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buffer.getvalue()


def symlink(name, target):
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target


def assert_nothing_stored(server, lam, name):
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=name)
    assert list((server.data_dir / "code" / "sha256").iterdir()) == []


def test_corrupt_zip(server, lam):
    status, code, message = error_of(lambda: create(lam, "corrupt", b"this is not a zip file"))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message == "Could not unzip uploaded file. Please check your file, then try to upload again."
    good = zip_with([("app.py", "x = 1\n" * 1000)])
    broken = bytearray(good)
    broken[60:90] = b"\xff" * 30
    assert error_of(lambda: create(lam, "corrupt", bytes(broken)))[:2] == (400, "InvalidParameterValueException")
    assert_nothing_stored(server, lam, "corrupt")


@pytest.mark.parametrize("name", ["../escape.py", "a/../../escape.py", "/etc/cron.d/evil"])
def test_zip_slip_entries(server, lam, name):
    status, code, message = error_of(lambda: create(lam, "slip", zip_with([("app.py", "x=1"), (name, "evil")])))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "outside the package" in message
    assert_nothing_stored(server, lam, "slip")


@pytest.mark.parametrize("target", ["/etc/shadow", "../../../etc/passwd"])
def test_symlinks_out_of_the_package(server, lam, target):
    status, code, message = error_of(lambda: create(lam, "link", zip_with([("app.py", "x=1"), symlink("data", target)])))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "symlink" in message
    assert_nothing_stored(server, lam, "link")


def test_symlink_inside_the_package_is_fine(lam):
    create(lam, "goodlink", zip_with([("lib/real.py", "x=1"), symlink("lib/alias.py", "real.py")]))


def test_zip_bomb_is_stopped(server, lam):
    # 300 MB of zeros deflates to about 300 KB; the unzipped limit is 250 MB.
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        with zf.open("bomb.bin", "w", force_zip64=True) as entry:
            chunk = b"\0" * (1 << 20)
            for _ in range(300):
                entry.write(chunk)
    bomb = buffer.getvalue()
    assert len(bomb) < 2_000_000
    status, code, message = error_of(lambda: create(lam, "bomb", bomb))
    assert (status, code, message) == (400, "InvalidParameterValueException", "Unzipped size must be smaller than 262144000 bytes")
    assert_nothing_stored(server, lam, "bomb")


def test_zipped_size_limit(server, lam):
    # Random bytes stored without compression: a zip just over 50 MB, whose request still
    # fits the request limit, so the zipped-size check answers.
    big = zip_with([(zipfile.ZipInfo("blob.bin"), os.urandom(52_428_800 + 50_000))])
    status, code, message = error_of(lambda: create(lam, "huge", big))
    assert (status, code) == (413, "RequestEntityTooLargeException")
    assert message == "Zipped size must be smaller than 52428800 bytes"
    assert_nothing_stored(server, lam, "huge")


def test_request_size_limit(server, lam):
    bigger = zip_with([(zipfile.ZipInfo("blob.bin"), os.urandom(54 * 1024 * 1024))])
    status, code, message = error_of(lambda: create(lam, "huger", bigger))
    assert (status, code) == (413, "RequestEntityTooLargeException")
    assert message == "Request must be smaller than 70167211 bytes for the CreateFunction operation"
    assert_nothing_stored(server, lam, "huger")
