"""S3 on Gust's endpoint: buckets and objects on the server's own disk, driven by the aws CLI
(`aws s3 …`, `aws s3api …`) and boto3 — every operation and error class, ranges and
conditional requests, multipart uploads of a large object with bounded server memory,
presigned URLs, session credentials, virtual-hosted requests, durability across kill -9,
and keys that look like paths staying inside the data directory."""

import hashlib
import http.client
import json
import os
import re
import signal
import urllib.error
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

import boto3
import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from conftest import error_of, module_server

OTHER, OTHER_KEY, OTHER_SECRET = "222222222222", "GKIAS3OTHERACCOUNT01", "s3-other-account-secret-0123456789"
DOMAIN = "gust.test"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("s3-accounts")
    accounts = root / "accounts.json"
    accounts.write_text(json.dumps([{"account_id": OTHER, "access_key_id": OTHER_KEY,
                                     "secret_access_key": OTHER_SECRET}]))
    yield from module_server(tmp_path_factory, "s3",
                             ["--accounts", str(accounts), "--url-domain", f"http://{DOMAIN}"])


def s3_client(server, **kwargs):
    return server.client(service="s3", s3={"addressing_style": "path"}, **kwargs)


@pytest.fixture(scope="module")
def s3(server):
    return s3_client(server)


@pytest.fixture(scope="module")
def other(server):
    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=OTHER_KEY, aws_secret_access_key=OTHER_SECRET,
                        config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))


def md5(data):
    return hashlib.md5(data).hexdigest()


def multipart_etag(parts):
    return hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts)).hexdigest() + f"-{len(parts)}"


def body_files(server):
    """Every file under the object store's body directory."""
    root = server.data_dir / "s3" / "objects"
    return [p for p in root.rglob("*") if p.is_file()]


def test_aws_cli_s3_commands(server, tmp_path):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    (src / "one.txt").write_text("one\n")
    (src / "sub" / "two.txt").write_text("two\n")
    big = os.urandom(1024 * 1024) * 12  # over the CLI's 8 MB multipart threshold
    (src / "big.bin").write_bytes(big)

    assert "make_bucket: cli-bucket" in server.aws("s3", "mb", "s3://cli-bucket").stdout
    server.aws("s3", "cp", "--no-progress", str(src / "one.txt"), "s3://cli-bucket/one.txt")
    server.aws("s3", "cp", "--no-progress", str(src / "big.bin"), "s3://cli-bucket/big.bin")
    synced = server.aws("s3", "sync", "--no-progress", str(src), "s3://cli-bucket/synced").stdout
    assert synced.count("upload:") == 3
    # A second sync finds nothing to do.
    assert "upload:" not in server.aws("s3", "sync", "--no-progress", str(src), "s3://cli-bucket/synced").stdout

    top = server.aws("s3", "ls", "s3://cli-bucket/").stdout
    assert "PRE synced/" in top and "one.txt" in top and str(len(big)) in top
    recursive = server.aws("s3", "ls", "--recursive", "s3://cli-bucket/").stdout
    assert "synced/sub/two.txt" in recursive
    assert "cli-bucket" in server.aws("s3", "ls").stdout

    out = tmp_path / "out"
    server.aws("s3", "sync", "--no-progress", "s3://cli-bucket/synced", str(out))
    assert (out / "big.bin").read_bytes() == big
    assert (out / "sub" / "two.txt").read_text() == "two\n"

    head = json.loads(server.aws("s3api", "head-object", "--bucket", "cli-bucket", "--key", "big.bin").stdout)
    assert head["ContentLength"] == len(big)
    chunk = 8 * 1024 * 1024
    assert head["ETag"] == '"' + multipart_etag([big[:chunk], big[chunk:]]) + '"'

    failed = server.aws("s3", "rb", "s3://cli-bucket", check=False)
    assert failed.returncode != 0 and "BucketNotEmpty" in failed.stderr
    removed = server.aws("s3", "rm", "--recursive", "s3://cli-bucket").stdout
    assert removed.count("delete:") == 5
    assert "remove_bucket: cli-bucket" in server.aws("s3", "rb", "s3://cli-bucket").stdout
    assert "cli-bucket" not in server.aws("s3", "ls").stdout


def test_aws_cli_s3api(server, tmp_path):
    server.aws("s3api", "create-bucket", "--bucket", "api-bucket")
    payload = tmp_path / "payload.json"
    payload.write_text('{"hello": "world"}')
    put = json.loads(server.aws("s3api", "put-object", "--bucket", "api-bucket", "--key", "data/p.json",
                                "--body", str(payload), "--content-type", "application/json",
                                "--metadata", "origin=cli", "--tagging", "team=core").stdout)
    assert put["ETag"] == '"' + md5(payload.read_bytes()) + '"'
    head = json.loads(server.aws("s3api", "head-object", "--bucket", "api-bucket", "--key", "data/p.json").stdout)
    assert head["ContentType"] == "application/json"
    assert head["Metadata"] == {"origin": "cli"}
    tags = json.loads(server.aws("s3api", "get-object-tagging", "--bucket", "api-bucket", "--key", "data/p.json").stdout)
    assert tags["TagSet"] == [{"Key": "team", "Value": "core"}]
    v1 = json.loads(server.aws("s3api", "list-objects", "--bucket", "api-bucket").stdout)
    assert [o["Key"] for o in v1["Contents"]] == ["data/p.json"]
    assert v1["Contents"][0]["Owner"]["ID"] == "000000000000"
    v2 = json.loads(server.aws("s3api", "list-objects-v2", "--bucket", "api-bucket", "--delimiter", "/").stdout)
    assert v2["CommonPrefixes"] == [{"Prefix": "data/"}]
    got = tmp_path / "got.json"
    server.aws("s3api", "get-object", "--bucket", "api-bucket", "--key", "data/p.json", str(got))
    assert got.read_text() == '{"hello": "world"}'
    location = json.loads(server.aws("s3api", "get-bucket-location", "--bucket", "api-bucket").stdout)
    assert location["LocationConstraint"] is None
    versioning = server.aws("s3api", "get-bucket-versioning", "--bucket", "api-bucket").stdout
    assert "Status" not in (json.loads(versioning) if versioning.strip() else {})
    assert "NotImplemented" in server.aws("s3api", "get-bucket-policy", "--bucket", "api-bucket", check=False).stderr
    missing = server.aws("s3api", "get-object", "--bucket", "api-bucket", "--key", "nope", str(got), check=False)
    assert missing.returncode != 0 and "NoSuchKey" in missing.stderr
    server.aws("s3api", "delete-object", "--bucket", "api-bucket", "--key", "data/p.json")
    server.aws("s3api", "delete-bucket", "--bucket", "api-bucket")


def test_objects_with_boto3(s3):
    s3.create_bucket(Bucket="objects")
    expires = datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    put = s3.put_object(Bucket="objects", Key="docs/readme.txt", Body=b"hello world",
                        ContentType="text/plain", CacheControl="max-age=60",
                        ContentDisposition='attachment; filename="r.txt"', ContentEncoding="identity",
                        ContentLanguage="en", Expires=expires, Metadata={"Colour": "blue"},
                        Tagging="a=1&b=two%20words", StorageClass="STANDARD_IA")
    assert put["ETag"] == '"5eb63bbbe01eeed093cb22bb8f5acdc3"'
    got = s3.get_object(Bucket="objects", Key="docs/readme.txt")
    assert got["Body"].read() == b"hello world"
    assert got["ContentType"] == "text/plain"
    assert got["CacheControl"] == "max-age=60"
    assert got["ContentDisposition"] == 'attachment; filename="r.txt"'
    assert got["ContentEncoding"] == "identity"
    assert got["ContentLanguage"] == "en"
    assert got["Expires"] == expires
    assert got["Metadata"] == {"colour": "blue"}
    assert got["TagCount"] == 2
    assert got["StorageClass"] == "STANDARD_IA"
    assert got["ETag"] == put["ETag"]
    assert got["AcceptRanges"] == "bytes"
    head = s3.head_object(Bucket="objects", Key="docs/readme.txt")
    assert head["ContentLength"] == 11 and head["ETag"] == put["ETag"]
    # The response-* query parameters override what is sent back.
    over = s3.get_object(Bucket="objects", Key="docs/readme.txt", ResponseContentType="application/x-test")
    assert over["ContentType"] == "application/x-test"

    assert s3.get_object_tagging(Bucket="objects", Key="docs/readme.txt")["TagSet"] == [
        {"Key": "a", "Value": "1"}, {"Key": "b", "Value": "two words"}]
    s3.put_object_tagging(Bucket="objects", Key="docs/readme.txt",
                          Tagging={"TagSet": [{"Key": "x", "Value": "y"}]})
    assert s3.get_object_tagging(Bucket="objects", Key="docs/readme.txt")["TagSet"] == [{"Key": "x", "Value": "y"}]
    s3.delete_object_tagging(Bucket="objects", Key="docs/readme.txt")
    assert s3.get_object_tagging(Bucket="objects", Key="docs/readme.txt")["TagSet"] == []

    # An object without a content type gets S3's default; an empty body is fine.
    s3.put_object(Bucket="objects", Key="empty", Body=b"")
    empty = s3.get_object(Bucket="objects", Key="empty")
    assert empty["ContentLength"] == 0 and empty["Body"].read() == b""
    assert empty["ContentType"] == "binary/octet-stream"
    assert empty["ETag"] == '"d41d8cd98f00b204e9800998ecf8427e"'

    # Copies: metadata copied, or replaced.
    copied = s3.copy_object(Bucket="objects", Key="copy.txt",
                            CopySource={"Bucket": "objects", "Key": "docs/readme.txt"})
    assert copied["CopyObjectResult"]["ETag"] == put["ETag"]
    assert s3.head_object(Bucket="objects", Key="copy.txt")["Metadata"] == {"colour": "blue"}
    s3.copy_object(Bucket="objects", Key="copy2.txt", MetadataDirective="REPLACE",
                   ContentType="text/x-new", Metadata={"new": "1"},
                   CopySource={"Bucket": "objects", "Key": "docs/readme.txt"})
    replaced = s3.head_object(Bucket="objects", Key="copy2.txt")
    assert replaced["Metadata"] == {"new": "1"} and replaced["ContentType"] == "text/x-new"
    status, code, _ = error_of(lambda: s3.copy_object(
        Bucket="objects", Key="copy.txt", CopySource={"Bucket": "objects", "Key": "copy.txt"}))
    assert (status, code) == (400, "InvalidRequest")
    status, code, _ = error_of(lambda: s3.copy_object(
        Bucket="objects", Key="c3", CopySource={"Bucket": "objects", "Key": "copy.txt"},
        CopySourceIfMatch='"0000"'))
    assert (status, code) == (412, "PreconditionFailed")
    s3.copy_object(Bucket="objects", Key="c3", CopySource={"Bucket": "objects", "Key": "copy.txt"},
                   CopySourceIfMatch=put["ETag"])

    # Deletes are idempotent; DeleteObjects reports each key.
    s3.delete_object(Bucket="objects", Key="copy2.txt")
    assert s3.delete_object(Bucket="objects", Key="copy2.txt")["ResponseMetadata"]["HTTPStatusCode"] == 204
    result = s3.delete_objects(Bucket="objects", Delete={"Objects": [
        {"Key": "copy.txt"}, {"Key": "never-existed"}, {"Key": "c3", "VersionId": "not-a-version"}]})
    assert sorted(d["Key"] for d in result["Deleted"]) == ["copy.txt", "never-existed"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("c3", "InvalidArgument")]
    quiet = s3.delete_objects(Bucket="objects", Delete={"Objects": [{"Key": "c3"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert error_of(lambda: s3.head_object(Bucket="objects", Key="c3"))[0] == 404


def test_listings(s3):
    s3.create_bucket(Bucket="listing")
    keys = ["a.txt", "photos/2024/jan.jpg", "photos/2024/feb.jpg", "photos/2025/mar.jpg",
            "photos/index.html", "z", "with space/x", "ü/x"]
    for key in keys:
        s3.put_object(Bucket="listing", Key=key, Body=key.encode())
    everything = s3.list_objects_v2(Bucket="listing")
    assert [o["Key"] for o in everything["Contents"]] == sorted(keys, key=lambda k: k.encode())
    assert everything["KeyCount"] == len(keys) and not everything["IsTruncated"]
    assert "Owner" not in everything["Contents"][0]
    assert everything["Contents"][0]["StorageClass"] == "STANDARD"
    owned = s3.list_objects_v2(Bucket="listing", FetchOwner=True, MaxKeys=1)
    assert owned["Contents"][0]["Owner"]["ID"] == "000000000000"

    top = s3.list_objects_v2(Bucket="listing", Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["a.txt", "z"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["photos/", "with space/", "ü/"]
    photos = s3.list_objects_v2(Bucket="listing", Prefix="photos/", Delimiter="/")
    assert [o["Key"] for o in photos["Contents"]] == ["photos/index.html"]
    assert [p["Prefix"] for p in photos["CommonPrefixes"]] == ["photos/2024/", "photos/2025/"]
    after = s3.list_objects_v2(Bucket="listing", StartAfter="photos/index.html")
    assert [o["Key"] for o in after["Contents"]] == ["with space/x", "z", "ü/x"]

    # Pages of two, v2 (continuation tokens) and v1 (markers), through boto3's paginators.
    for operation in ["list_objects_v2", "list_objects"]:
        pages = list(s3.get_paginator(operation).paginate(
            Bucket="listing", Delimiter="/", PaginationConfig={"PageSize": 2}))
        assert len(pages) == 3
        found = [o["Key"] for p in pages for o in p.get("Contents", [])]
        prefixes = [c["Prefix"] for p in pages for c in p.get("CommonPrefixes", [])]
        assert found == ["a.txt", "z"] and prefixes == ["photos/", "with space/", "ü/"]
        flat = [o["Key"] for p in s3.get_paginator(operation).paginate(
            Bucket="listing", PaginationConfig={"PageSize": 3}) for o in p.get("Contents", [])]
        assert flat == sorted(keys, key=lambda k: k.encode())
    status, code, _ = error_of(lambda: s3.list_objects_v2(Bucket="listing", ContinuationToken="!!bad"))
    assert (status, code) == (400, "InvalidArgument")


def test_ranges_and_conditional_requests(s3):
    s3.create_bucket(Bucket="ranges")
    data = bytes(range(256)) * 4
    etag = s3.put_object(Bucket="ranges", Key="k", Body=data)["ETag"]
    part = s3.get_object(Bucket="ranges", Key="k", Range="bytes=10-19")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206
    assert part["ContentRange"] == f"bytes 10-19/{len(data)}" and part["Body"].read() == data[10:20]
    assert s3.get_object(Bucket="ranges", Key="k", Range="bytes=-5")["Body"].read() == data[-5:]
    assert s3.get_object(Bucket="ranges", Key="k", Range="bytes=1000-")["Body"].read() == data[1000:]
    assert s3.get_object(Bucket="ranges", Key="k", Range="bytes=1000-99999")["ContentLength"] == 24
    status, code, _ = error_of(lambda: s3.get_object(Bucket="ranges", Key="k", Range="bytes=5000-"))
    assert (status, code) == (416, "InvalidRange")
    head = s3.head_object(Bucket="ranges", Key="k", Range="bytes=0-0")
    assert head["ContentLength"] == 1 and head["ResponseMetadata"]["HTTPStatusCode"] == 206

    modified = s3.head_object(Bucket="ranges", Key="k")["LastModified"]
    assert s3.get_object(Bucket="ranges", Key="k", IfMatch=etag)["Body"].read() == data
    assert error_of(lambda: s3.get_object(Bucket="ranges", Key="k", IfMatch='"nope"'))[:2] == (412, "PreconditionFailed")
    assert error_of(lambda: s3.get_object(Bucket="ranges", Key="k", IfNoneMatch=etag))[0] == 304
    assert error_of(lambda: s3.head_object(Bucket="ranges", Key="k", IfNoneMatch=etag))[0] == 304
    assert error_of(lambda: s3.get_object(Bucket="ranges", Key="k", IfModifiedSince=modified))[0] == 304
    assert s3.get_object(Bucket="ranges", Key="k", IfModifiedSince=modified - timedelta(seconds=1))["ContentLength"] == len(data)
    assert error_of(lambda: s3.get_object(
        Bucket="ranges", Key="k", IfUnmodifiedSince=modified - timedelta(seconds=1)))[:2] == (412, "PreconditionFailed")
    # If-Match that holds wins over a failing If-Unmodified-Since.
    assert s3.get_object(Bucket="ranges", Key="k", IfMatch=etag,
                         IfUnmodifiedSince=modified - timedelta(days=1))["ContentLength"] == len(data)
    # Conditional writes.
    assert error_of(lambda: s3.put_object(Bucket="ranges", Key="k", Body=b"x", IfNoneMatch="*"))[:2] == (412, "PreconditionFailed")
    s3.put_object(Bucket="ranges", Key="fresh", Body=b"x", IfNoneMatch="*")
    s3.put_object(Bucket="ranges", Key="k", Body=b"y", IfMatch=etag)
    assert error_of(lambda: s3.put_object(Bucket="ranges", Key="k", Body=b"z", IfMatch=etag))[:2] == (412, "PreconditionFailed")


def test_error_classes(server, s3, other):
    s3.create_bucket(Bucket="errors")
    assert error_of(lambda: s3.create_bucket(Bucket="errors"))[:2] == (409, "BucketAlreadyOwnedByYou")
    # Names are global: another account cannot take it, nor touch it.
    assert error_of(lambda: other.create_bucket(Bucket="errors"))[:2] == (409, "BucketAlreadyExists")
    assert error_of(lambda: other.put_object(Bucket="errors", Key="k", Body=b"x"))[:2] == (403, "AccessDenied")
    assert error_of(lambda: other.list_objects_v2(Bucket="errors"))[:2] == (403, "AccessDenied")
    assert error_of(lambda: other.head_bucket(Bucket="errors"))[0] == 403
    assert "errors" not in [b["Name"] for b in other.list_buckets()["Buckets"]]
    other.create_bucket(Bucket="errors-other")
    assert [b["Name"] for b in other.list_buckets()["Buckets"]] == ["errors-other"]

    assert error_of(lambda: s3.create_bucket(Bucket="Bad_Name"))[:2] == (400, "InvalidBucketName")
    assert error_of(lambda: s3.create_bucket(Bucket="ab"))[:2] == (400, "InvalidBucketName")
    assert error_of(lambda: s3.create_bucket(
        Bucket="elsewhere", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}))[1] == "InvalidLocationConstraint"
    assert error_of(lambda: s3.get_object(Bucket="no-such-bucket-here", Key="k"))[:2] == (404, "NoSuchBucket")
    assert error_of(lambda: s3.head_bucket(Bucket="no-such-bucket-here"))[0] == 404
    assert error_of(lambda: s3.get_object(Bucket="errors", Key="missing"))[:2] == (404, "NoSuchKey")
    assert error_of(lambda: s3.get_object(Bucket="errors", Key="missing", VersionId="abc"))[:2] == (400, "InvalidArgument")
    s3.put_object(Bucket="errors", Key="k", Body=b"x")
    assert error_of(lambda: s3.delete_bucket(Bucket="errors"))[:2] == (409, "BucketNotEmpty")
    assert error_of(lambda: s3.put_object(Bucket="errors", Key="k", Body=b"hello",
                                          ContentMD5="XrY7u+Ae7tCTyyK7j1rNww=="))[:2] == (400, "BadDigest")
    assert error_of(lambda: s3.put_object(Bucket="errors", Key="k" * 1025, Body=b"x"))[1] == "KeyTooLongError"
    assert error_of(lambda: s3.put_object(Bucket="errors", Key="k", Body=b"x",
                                          Metadata={"m": "v" * 2100}))[:2] == (400, "MetadataTooLarge")
    assert error_of(lambda: s3.put_object_tagging(Bucket="errors", Key="k", Tagging={
        "TagSet": [{"Key": f"k{i}", "Value": "v"} for i in range(11)]}))[:2] == (400, "InvalidTag")
    # What Gust does not have is refused, never ignored: ACLs (buckets are
    # BucketOwnerEnforced, as new S3 buckets are), KMS and customer keys, object lock.
    s3.put_object(Bucket="errors", Key="acl", Body=b"x", ACL="private", ServerSideEncryption="AES256")
    assert error_of(lambda: s3.put_object(Bucket="errors", Key="acl", Body=b"x", ACL="public-read"))[:2] == (
        400, "AccessControlListNotSupported")
    assert error_of(lambda: s3.put_object(Bucket="errors", Key="acl", Body=b"x",
                                          ServerSideEncryption="aws:kms"))[:2] == (501, "NotImplemented")
    assert error_of(lambda: s3.create_bucket(Bucket="public-bucket", ACL="public-read"))[1] == \
        "InvalidBucketAclWithObjectOwnership"
    # Signatures: a wrong secret, an unknown key, none at all.
    wrong = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                         aws_access_key_id=server.credentials[0], aws_secret_access_key="wrong-secret",
                         config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    assert error_of(lambda: wrong.list_buckets())[:2] == (403, "SignatureDoesNotMatch")
    unknown = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id="GKIANOBODY0000000000", aws_secret_access_key="x",
                           config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    assert error_of(lambda: unknown.list_buckets())[:2] == (403, "InvalidAccessKeyId")
    # An unsigned path-style request is not recognisably S3's (Lambda's router answers it);
    # an unsigned virtual-hosted one is S3's, and refused (test_virtual_hosted_style).
    with pytest.raises(urllib.error.HTTPError) as anonymous:
        urllib.request.urlopen(f"{server.endpoint}/errors/k", timeout=10)
    assert anonymous.value.code == 403 and not anonymous.value.read().startswith(b"<?xml")
    # A Lambda-signed request to the same path is not S3's either.
    assert server.client().list_functions()["Functions"] == []


def test_multipart_rules(s3):
    s3.create_bucket(Bucket="multipart")
    upload = s3.create_multipart_upload(Bucket="multipart", Key="mp", ContentType="video/mp4",
                                        Metadata={"m": "1"}, Tagging="t=1")["UploadId"]
    five = b"a" * (5 * 1024 * 1024)
    p1 = s3.upload_part(Bucket="multipart", Key="mp", UploadId=upload, PartNumber=1, Body=five)["ETag"]
    p2 = s3.upload_part(Bucket="multipart", Key="mp", UploadId=upload, PartNumber=2, Body=b"small")["ETag"]
    p3 = s3.upload_part(Bucket="multipart", Key="mp", UploadId=upload, PartNumber=3, Body=b"tail")["ETag"]
    assert p1 == f'"{md5(five)}"'
    parts = s3.list_parts(Bucket="multipart", Key="mp", UploadId=upload, MaxParts=2)
    assert [p["PartNumber"] for p in parts["Parts"]] == [1, 2] and parts["IsTruncated"]
    assert parts["NextPartNumberMarker"] == 2
    uploads = s3.list_multipart_uploads(Bucket="multipart")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("mp", upload)]

    def complete(parts):
        return s3.complete_multipart_upload(Bucket="multipart", Key="mp", UploadId=upload,
                                            MultipartUpload={"Parts": parts})

    assert error_of(lambda: complete([{"PartNumber": 2, "ETag": p2}, {"PartNumber": 1, "ETag": p1}]))[:2] == (400, "InvalidPartOrder")
    assert error_of(lambda: complete([{"PartNumber": 1, "ETag": p2}]))[:2] == (400, "InvalidPart")
    assert error_of(lambda: complete([{"PartNumber": 1, "ETag": p1}, {"PartNumber": 9, "ETag": p3}]))[:2] == (400, "InvalidPart")
    assert error_of(lambda: complete([{"PartNumber": 2, "ETag": p2}, {"PartNumber": 3, "ETag": p3}]))[:2] == (400, "EntityTooSmall")
    assert error_of(lambda: s3.upload_part(Bucket="multipart", Key="mp", UploadId=upload,
                                           PartNumber=10001, Body=b"x"))[:2] == (400, "InvalidArgument")
    assert error_of(lambda: s3.upload_part(Bucket="multipart", Key="mp", UploadId="nope",
                                           PartNumber=1, Body=b"x"))[:2] == (404, "NoSuchUpload")
    done = complete([{"PartNumber": 1, "ETag": p1}, {"PartNumber": 3, "ETag": p3}])
    assert done["ETag"] == '"' + multipart_etag([five, b"tail"]) + '"'
    got = s3.get_object(Bucket="multipart", Key="mp")
    assert got["Body"].read() == five + b"tail"
    assert got["ContentType"] == "video/mp4" and got["Metadata"] == {"m": "1"} and got["TagCount"] == 1
    assert error_of(lambda: complete([{"PartNumber": 1, "ETag": p1}]))[:2] == (404, "NoSuchUpload")

    # Part copies, and aborts.
    upload = s3.create_multipart_upload(Bucket="multipart", Key="copied")["UploadId"]
    copy = s3.upload_part_copy(Bucket="multipart", Key="copied", UploadId=upload, PartNumber=1,
                               CopySource={"Bucket": "multipart", "Key": "mp"},
                               CopySourceRange=f"bytes=0-{5 * 1024 * 1024 - 1}")
    assert copy["CopyPartResult"]["ETag"] == f'"{md5(five)}"'
    s3.abort_multipart_upload(Bucket="multipart", Key="copied", UploadId=upload)
    assert error_of(lambda: s3.list_parts(Bucket="multipart", Key="copied", UploadId=upload))[:2] == (404, "NoSuchUpload")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket="multipart")


def rss_peak_kib(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1))


def test_large_multipart_upload_with_bounded_memory(server, s3, tmp_path):
    s3.create_bucket(Bucket="large")
    size = 200 * 1024 * 1024
    path = tmp_path / "large.bin"
    block = os.urandom(1024 * 1024)
    with open(path, "wb") as f:
        for i in range(size // len(block)):
            f.write(i.to_bytes(8, "big") + block[8:])
    before = rss_peak_kib(server.process.pid)
    chunk = 16 * 1024 * 1024
    config = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=chunk, max_concurrency=8)
    s3.upload_file(str(path), "large", "big/object.bin", Config=config)
    after = rss_peak_kib(server.process.pid)
    # The server streams every part to disk: its peak memory grows by far less than the
    # object (200 MiB).
    assert after - before < 80 * 1024, f"peak RSS grew by {(after - before) // 1024} MiB"

    data = path.read_bytes()
    head = s3.head_object(Bucket="large", Key="big/object.bin")
    assert head["ContentLength"] == size
    assert head["ETag"] == '"' + multipart_etag([data[i:i + chunk] for i in range(0, size, chunk)]) + '"'
    out = tmp_path / "back.bin"
    s3.download_file("large", "big/object.bin", str(out))
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert rss_peak_kib(server.process.pid) - before < 80 * 1024
    # Parts were joined and removed: one body is left for the object.
    s3.delete_object(Bucket="large", Key="big/object.bin")
    s3.delete_bucket(Bucket="large")
    names = {p.name for p in body_files(server)}
    assert not any(n.endswith(".tmp") for n in names)


def test_presigned_urls(server, s3):
    s3.create_bucket(Bucket="presigned")
    s3.put_object(Bucket="presigned", Key="file.txt", Body=b"presigned body")
    v4 = s3_client(server, signature_version="s3v4")
    for client in [s3, v4]:
        url = client.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "file.txt"},
                                            ExpiresIn=300)
        with urllib.request.urlopen(url, timeout=10) as response:
            assert response.read() == b"presigned body"
    put_url = v4.generate_presigned_url("put_object", Params={"Bucket": "presigned", "Key": "uploaded.txt"},
                                        ExpiresIn=300)
    request = urllib.request.Request(put_url, data=b"put through a URL", method="PUT")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert s3.get_object(Bucket="presigned", Key="uploaded.txt")["Body"].read() == b"put through a URL"
    # A tampered signature, and an expired URL.
    url = v4.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "file.txt"})
    with pytest.raises(urllib.error.HTTPError) as tampered:
        urllib.request.urlopen(url[:-4] + "0000", timeout=10)
    assert tampered.value.code == 403 and b"SignatureDoesNotMatch" in tampered.value.read()
    expired = v4.generate_presigned_url("get_object", Params={"Bucket": "presigned", "Key": "file.txt"},
                                        ExpiresIn=1)
    import time
    time.sleep(2)
    with pytest.raises(urllib.error.HTTPError) as late:
        urllib.request.urlopen(expired, timeout=10)
    assert late.value.code == 403 and b"AccessDenied" in late.value.read()


def test_session_credentials(server, s3):
    s3.create_bucket(Bucket="sessions")
    credentials = server.client(service="sts").assume_role(
        RoleArn="arn:aws:iam::000000000000:role/worker", RoleSessionName="s3-job")["Credentials"]
    session = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                           aws_access_key_id=credentials["AccessKeyId"],
                           aws_secret_access_key=credentials["SecretAccessKey"],
                           aws_session_token=credentials["SessionToken"],
                           config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    session.put_object(Bucket="sessions", Key="by-role", Body=b"role")
    assert s3.get_object(Bucket="sessions", Key="by-role")["Body"].read() == b"role"
    uploads = session.create_multipart_upload(Bucket="sessions", Key="mp")
    listed = session.list_multipart_uploads(Bucket="sessions")["Uploads"][0]
    assert listed["Initiator"]["ID"].endswith(":s3-job")
    session.abort_multipart_upload(Bucket="sessions", Key="mp", UploadId=uploads["UploadId"])
    tampered = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                            aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"][:-2] + "xx",
                            config=Config(retries={"max_attempts": 1}, s3={"addressing_style": "path"}))
    assert error_of(lambda: tampered.list_buckets())[0] in (400, 403)


def signed_request(server, method, host, path, body=b""):
    """Sends a SigV4-signed S3 request with this Host header to the server's address."""
    key, secret = server.credentials
    request = botocore.awsrequest.AWSRequest(method=method, url=f"http://{host}{path}", data=body)
    request.headers["x-amz-content-sha256"] = hashlib.sha256(body).hexdigest()
    botocore.auth.S3SigV4Auth(botocore.credentials.Credentials(key, secret), "s3", "us-east-1").add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request(method, path, body=body, headers={"Host": host, **dict(request.headers.items())})
    response = connection.getresponse()
    return response.status, response.read()


def test_virtual_hosted_style(server, s3):
    s3.create_bucket(Bucket="vhost")
    host = f"vhost.s3.us-east-1.{DOMAIN}:{server.port}"
    status, _ = signed_request(server, "PUT", host, "/dir/v.txt", b"virtual")
    assert status == 200
    assert s3.get_object(Bucket="vhost", Key="dir/v.txt")["Body"].read() == b"virtual"
    status, body = signed_request(server, "GET", host, "/dir/v.txt")
    assert (status, body) == (200, b"virtual")
    status, body = signed_request(server, "GET", host, "/?list-type=2")
    assert status == 200 and b"<Key>dir/v.txt</Key>" in body
    # The service host itself lists buckets; unsigned requests to it are refused as S3 does.
    status, body = signed_request(server, "GET", f"s3.us-east-1.{DOMAIN}", "/")
    assert status == 200 and b"<Name>vhost</Name>" in body
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/dir/v.txt", headers={"Host": host})
    response = connection.getresponse()
    assert response.status == 403 and b"AccessDenied" in response.read()


def test_keys_that_look_like_paths_stay_inside(server, s3, tmp_path):
    s3.create_bucket(Bucket="paths")
    outside = server.data_dir.parent
    before = sorted(p.name for p in outside.iterdir())
    keys = ["../../../../../../tmp/gust-escape", "..", "a/../../b", "%2F..%2F..%2Fescape",
            "/leading/slash", "back\\..\\slash", "ünïcödé/日本語/🙂", "x" * 1024, "q?uery#frag", " spaced "]
    for i, key in enumerate(keys):
        s3.put_object(Bucket="paths", Key=key, Body=f"body {i}".encode())
    for i, key in enumerate(keys):
        assert s3.get_object(Bucket="paths", Key=key)["Body"].read() == f"body {i}".encode()
    listed = [o["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="paths")
              for o in p.get("Contents", [])]
    assert sorted(listed) == sorted(keys)
    assert not Path("/tmp/gust-escape").exists()
    assert sorted(p.name for p in outside.iterdir()) == before
    # Every body is a file named by a 32-digit hex id in a two-digit shard.
    for path in body_files(server):
        assert re.fullmatch(r"[0-9a-f]{2}", path.parent.name), path
        assert re.fullmatch(r"[0-9a-f]{32}", path.name) and path.name.startswith(path.parent.name), path


def test_acknowledged_puts_survive_kill_9(make_server):
    server = make_server()
    s3 = s3_client(server)
    s3.create_bucket(Bucket="durable")
    etags = {}
    for i in range(20):
        body = os.urandom(1000 + i * 5000)
        etags[f"k{i}"] = (s3.put_object(Bucket="durable", Key=f"k{i}", Body=body)["ETag"], md5(body))
    last = s3.put_object(Bucket="durable", Key="last", Body=b"the very last put")["ETag"]
    server.stop(signal.SIGKILL)
    server.start()
    s3 = s3_client(server)
    for key, (etag, digest) in etags.items():
        got = s3.get_object(Bucket="durable", Key=key)
        assert got["ETag"] == etag == f'"{digest}"'
        assert md5(got["Body"].read()) == digest
    got = s3.get_object(Bucket="durable", Key="last")
    assert got["ETag"] == last and got["Body"].read() == b"the very last put"
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["durable"]
    assert len(body_files(server)) == 21


def test_streaming_signed_upload(server, s3):
    """A PutObject with `aws-chunked` payload signing (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), as
    the Java, Go and JavaScript SDKs send it: each chunk signed after the one before."""
    import hmac
    s3.create_bucket(Bucket="chunked")
    key, secret = server.credentials
    data = os.urandom(150 * 1024)
    chunks = [data[i:i + 64 * 1024] for i in range(0, len(data), 64 * 1024)] + [b""]
    now = datetime.now(timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    scope = f"{day}/us-east-1/s3/aws4_request"
    host = f"127.0.0.1:{server.port}"
    path = "/chunked/streamed.bin"

    def hm(k, msg):
        return hmac.new(k, msg.encode(), hashlib.sha256).digest()

    signing_key = hm(hm(hm(hm(f"AWS4{secret}".encode(), day), "us-east-1"), "s3"), "aws4_request")

    def signature(string_to_sign):
        return hmac.new(signing_key, string_to_sign.encode(), hashlib.sha256).hexdigest()

    def encoded(previous, tamper=False):
        out = b""
        for chunk in chunks:
            sts = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, previous,
                             hashlib.sha256(b"").hexdigest(), hashlib.sha256(chunk).hexdigest()])
            previous = signature(sts)
            body = chunk if not (tamper and chunk) else b"X" + chunk[1:]
            out += f"{len(chunk):x};chunk-signature={previous}\r\n".encode() + body + b"\r\n"
        return out

    def put(tamper=False):
        payload = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
        headers = {"host": host, "x-amz-date": amz_date, "x-amz-content-sha256": payload,
                   "content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(len(data))}
        names = sorted(headers)
        canonical = "\n".join(["PUT", path, "", *[f"{n}:{headers[n]}" for n in names], "",
                               ";".join(names), payload])
        seed = signature("\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                                    hashlib.sha256(canonical.encode()).hexdigest()]))
        body = encoded(seed, tamper)
        headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={key}/{scope}, "
                                    f"SignedHeaders={';'.join(names)}, Signature={seed}")
        headers["content-length"] = str(len(body))
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("PUT", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("ETag"), response.read()

    status, etag, _ = put()
    assert status == 200 and etag == f'"{md5(data)}"'
    assert s3.get_object(Bucket="chunked", Key="streamed.bin")["Body"].read() == data
    # A chunk changed in transit breaks its signature: nothing is stored.
    s3.delete_object(Bucket="chunked", Key="streamed.bin")
    status, _, body = put(tamper=True)
    assert status == 403 and b"SignatureDoesNotMatch" in body
    assert error_of(lambda: s3.head_object(Bucket="chunked", Key="streamed.bin"))[0] == 404


def test_stalled_and_broken_uploads_leave_nothing(make_server):
    server = make_server(["--body-timeout", "1s"])
    s3 = s3_client(server)
    s3.create_bucket(Bucket="stalls")
    key, secret = server.credentials
    host = f"127.0.0.1:{server.port}"

    def start_put(path, declared):
        request = botocore.awsrequest.AWSRequest(method="PUT", url=f"http://{host}{path}")
        request.headers["x-amz-content-sha256"] = "UNSIGNED-PAYLOAD"
        botocore.auth.S3SigV4Auth(botocore.credentials.Credentials(key, secret), "s3",
                                  "us-east-1").add_auth(request)
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.putrequest("PUT", path, skip_accept_encoding=True)
        for name, value in request.headers.items():
            connection.putheader(name, value)
        connection.putheader("Content-Length", str(declared))
        connection.endheaders()
        return connection

    # A body that stops arriving: 400 RequestTimeout after --body-timeout, and no object.
    connection = start_put("/stalls/stalled", 1_000_000)
    connection.send(b"x" * 300_000)
    response = connection.getresponse()
    assert response.status == 400 and b"RequestTimeout" in response.read()
    # A client that goes away half way.
    connection = start_put("/stalls/broken", 5_000_000)
    connection.send(b"y" * 2_000_000)
    connection.close()
    import time
    time.sleep(1.5)
    for key_name in ["stalled", "broken"]:
        assert error_of(lambda: s3.head_object(Bucket="stalls", Key=key_name))[0] == 404
    assert body_files(server) == []
    # After a restart nothing is left either, and the bucket works.
    server.stop(signal.SIGKILL)
    server.start()
    assert body_files(server) == []
    s3 = s3_client(server)
    s3.put_object(Bucket="stalls", Key="fine", Body=b"ok")
    assert s3.get_object(Bucket="stalls", Key="fine")["Body"].read() == b"ok"
