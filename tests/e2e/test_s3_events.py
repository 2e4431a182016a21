"""S3 bucket notifications and Lambda code from S3: configurations validated as S3 does
(the function's policy for `s3.amazonaws.com`, the `s3:TestEvent` to queues and topics),
object events delivered with S3's record to a function, a queue and a topic by event type
and key filter, a notification that survives `kill -9`, and functions and layers deployed
from packages in a bucket (one over the 50 MB direct-upload limit)."""

import hashlib
import io
import json
import os
import signal
import struct
import sys
import time
import zipfile
import zlib
from pathlib import Path

import pytest

from conftest import ROLE, error_of, make_zip, module_server

RECORDER = make_zip({"app.py": "import json\ndef handler(event, context):\n"
                               "    print('EVENT ' + json.dumps(event))\n"})


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, "s3events")


def clients(server):
    return (server.client(), server.client(service="s3", s3={"addressing_style": "path"}),
            server.client(service="sqs"), server.client(service="sns"))


def logged_events(server, function):
    out = server.gust("logs", function).stdout
    return [json.loads(line.split("EVENT ", 1)[1]) for line in out.splitlines() if "EVENT " in line]


def wait_for(check, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    return check()


def queue(sqs, name):
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def drain(sqs, url, count, timeout=20):
    messages, deadline = [], time.time() + timeout
    while len(messages) < count and time.time() < deadline:
        for m in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            messages.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return messages


def test_notifications_to_a_function_a_queue_and_a_topic(shared):
    lam, s3, sqs, sns = clients(shared)
    s3.create_bucket(Bucket="photos")
    lam.create_function(FunctionName="thumbs", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": RECORDER})
    fn_arn = lam.get_function(FunctionName="thumbs")["Configuration"]["FunctionArn"]
    removed_url, removed_arn = queue(sqs, "removed")
    docs_url, docs_arn = queue(sqs, "docs-feed")
    topic = sns.create_topic(Name="docs")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=docs_arn)
    config = {
        "LambdaFunctionConfigurations": [{
            "Id": "thumbnails", "LambdaFunctionArn": fn_arn, "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"},
                                               {"Name": "suffix", "Value": ".jpg"}]}}}],
        "QueueConfigurations": [{"QueueArn": removed_arn, "Events": ["s3:ObjectRemoved:*"]}],
        "TopicConfigurations": [{"Id": "docs", "TopicArn": topic, "Events": ["s3:ObjectCreated:Put"],
                                 "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "docs/"}]}}}],
    }
    # The function's policy does not allow S3 yet: the configuration is refused as S3 refuses it.
    status, code, message = error_of(lambda: s3.put_bucket_notification_configuration(
        Bucket="photos", NotificationConfiguration=config))
    assert (status, code) == (400, "InvalidArgument")
    assert "Unable to validate the following destination configurations" in message
    lam.add_permission(FunctionName="thumbs", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::photos",
                       SourceAccount="000000000000")
    s3.put_bucket_notification_configuration(Bucket="photos", NotificationConfiguration=config)
    got = s3.get_bucket_notification_configuration(Bucket="photos")
    assert got["LambdaFunctionConfigurations"][0]["Id"] == "thumbnails"
    assert got["LambdaFunctionConfigurations"][0]["Filter"]["Key"]["FilterRules"] == [
        {"Name": "prefix", "Value": "uploads/"}, {"Name": "suffix", "Value": ".jpg"}]
    assert got["QueueConfigurations"][0]["Id"]  # generated
    # Configuring sent the queue (and the topic) S3's test event.
    test = drain(sqs, removed_url, 1)[0]
    assert test["Event"] == "s3:TestEvent" and test["Bucket"] == "photos"

    s3.put_object(Bucket="photos", Key="uploads/my cat.jpg", Body=b"x" * 1000)
    s3.put_object(Bucket="photos", Key="uploads/skip.png", Body=b"no")
    s3.put_object(Bucket="photos", Key="elsewhere/skip.jpg", Body=b"no")
    events = wait_for(lambda: logged_events(shared, "thumbs"))
    assert len(events) == 1
    record = events[0]["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"] == "ObjectCreated:Put"
    assert record["awsRegion"] == "us-east-1" and record["eventVersion"] == "2.1"
    assert record["s3"]["configurationId"] == "thumbnails"
    assert record["s3"]["bucket"] == {"name": "photos", "ownerIdentity": {"principalId": "000000000000"},
                                      "arn": "arn:aws:s3:::photos"}
    obj = record["s3"]["object"]
    assert obj["key"] == "uploads/my+cat.jpg" and obj["size"] == 1000
    assert obj["eTag"] == hashlib.md5(b"x" * 1000).hexdigest()
    assert int(obj["sequencer"], 16) > 0
    assert record["requestParameters"]["sourceIPAddress"] == "127.0.0.1"

    s3.delete_object(Bucket="photos", Key="uploads/skip.png")
    removed = drain(sqs, removed_url, 1)[0]["Records"][0]
    assert removed["eventName"] == "ObjectRemoved:Delete" and "size" not in removed["s3"]["object"]

    s3.put_object(Bucket="photos", Key="docs/readme.txt", Body=b"doc")
    envelopes = drain(sqs, docs_url, 2)
    # The topic got the test event at configuration, then the record.
    assert all(e["Subject"] == "Amazon S3 Notification" for e in envelopes)
    messages = [json.loads(e["Message"]) for e in envelopes]
    assert [m.get("Event") for m in messages if "Event" in m] == ["s3:TestEvent"]
    records = [m["Records"][0] for m in messages if "Records" in m]
    assert [r["s3"]["object"]["key"] for r in records] == ["docs/readme.txt"]
    # The configuration's own checks.
    status, code, message = error_of(lambda: s3.put_bucket_notification_configuration(
        Bucket="photos", NotificationConfiguration={"QueueConfigurations": [
            {"QueueArn": removed_arn, "Events": ["s3:ObjectCreated:*"]},
            {"QueueArn": removed_arn, "Events": ["s3:ObjectCreated:Put"]}]}))
    assert (status, code) == (400, "InvalidArgument") and "Configurations overlap" in message


def test_a_notification_survives_kill_9(make_server):
    server = make_server()
    _, s3, sqs, _ = clients(server)
    s3.create_bucket(Bucket="durable")
    url, arn = queue(sqs, "durable-events")
    s3.put_bucket_notification_configuration(Bucket="durable", NotificationConfiguration={
        "QueueConfigurations": [{"QueueArn": arn, "Events": ["s3:ObjectCreated:*"]}]})
    drain(sqs, url, 1)  # the test event
    s3.put_object(Bucket="durable", Key="k1", Body=b"1")
    server.stop(signal.SIGKILL)
    server.start()
    _, s3, sqs, _ = clients(server)
    records = [m["Records"][0]["s3"]["object"]["key"] for m in drain(sqs, url, 1)]
    # At least once: a kill between the delivery and its acknowledgement repeats it.
    assert records and set(records) == {"k1"}, records


def big_package(size_mb):
    """A zip whose stored (uncompressed) entry makes it `size_mb` MB, over the direct limit."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("app.py", "import os\ndef handler(event, context):\n"
                              "    return os.path.getsize(os.path.join(os.environ['LAMBDA_TASK_ROOT'], 'blob.bin'))\n")
        zf.writestr("blob.bin", os.urandom(size_mb * 1024 * 1024))
    return buffer.getvalue()


def test_code_from_s3(shared, tmp_path):
    lam, s3, _, _ = clients(shared)
    s3.create_bucket(Bucket="packages")
    package = big_package(80)
    assert len(package) > 50 * 1024 * 1024
    path = tmp_path / "big.zip"
    path.write_bytes(package)
    s3.upload_file(str(path), "packages", "big.zip")
    created = lam.create_function(FunctionName="fromS3", Runtime="python3.12", Role=ROLE,
                                  Handler="app.handler", Code={"S3Bucket": "packages", "S3Key": "big.zip"},
                                  Timeout=30)
    assert created["CodeSize"] == len(package)
    lam.get_waiter("function_active_v2").wait(FunctionName="fromS3")
    answer = lam.invoke(FunctionName="fromS3", Payload=b"{}")
    assert json.loads(answer["Payload"].read()) == 80 * 1024 * 1024
    # UpdateFunctionCode and PublishLayerVersion from S3 too.
    s3.put_object(Bucket="packages", Key="small.zip", Body=RECORDER)
    updated = lam.update_function_code(FunctionName="fromS3", S3Bucket="packages", S3Key="small.zip")
    assert updated["CodeSize"] == len(RECORDER)
    layer = lam.publish_layer_version(LayerName="fromS3", Content={"S3Bucket": "packages", "S3Key": "small.zip"})
    assert layer["Content"]["CodeSize"] == len(RECORDER)
    # Lambda's wording for what S3 refused.
    status, code, message = error_of(lambda: lam.create_function(
        FunctionName="missing", Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"S3Bucket": "packages", "S3Key": "nope.zip"}))
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message.startswith("Error occurred while GetObject. S3 Error Code: NoSuchKey.")
    status, code, message = error_of(lambda: lam.create_function(
        FunctionName="missing", Runtime="python3.12", Role=ROLE, Handler="app.handler",
        Code={"S3Bucket": "no-such-bucket-here", "S3Key": "x.zip"}))
    assert "S3 Error Code: NoSuchBucket" in message


IMAGES = Path(__file__).resolve().parents[2] / "target" / "e2e-fn-images"

THUMBNAILER = r'''
import io, urllib.parse
import boto3
from PIL import Image

s3 = boto3.client("s3")

def handler(event, context):
    for record in event["Records"]:
        bucket = record["s3"]["bucket"]["name"]
        key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
        image = Image.open(io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
        image.thumbnail((128, 128))
        out = io.BytesIO()
        image.save(out, format="PNG")
        name = key.split("/", 1)[1]
        s3.put_object(Bucket=bucket, Key="thumbnails/" + name, Body=out.getvalue(), ContentType="image/png")
        print("THUMBNAIL", key, image.size)
'''


def png(width, height):
    """A real RGB PNG, built by hand (the test venv has no imaging library)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes(v for x in range(width) for v in (x % 256, y % 256, 128))
                    for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def png_size(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_the_seeds_thumbnail_pattern(shared, tmp_path):
    """S3 upload -> Lambda -> resize image -> save thumbnail -> S3, for real: Pillow from
    PyPI in a layer, boto3 calling Gust's S3 from inside the function."""
    if not (IMAGES / "python" / "PIL").is_dir():
        pytest.skip("target/e2e-fn-images is missing: run scripts/test, which installs it")
    lam, s3, _, _ = clients(shared)
    layer_zip = tmp_path / "images.zip"
    with zipfile.ZipFile(layer_zip, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in (IMAGES / "python").rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                zf.write(path, path.relative_to(IMAGES))
    # Over the direct-upload limit or not, the layer goes through a bucket, as on AWS.
    s3.create_bucket(Bucket="layers")
    s3.upload_file(str(layer_zip), "layers", "images.zip")
    layer = lam.publish_layer_version(LayerName="images", Content={"S3Bucket": "layers", "S3Key": "images.zip"})
    runtime = f"python3.{sys.version_info.minor}"  # the interpreter Pillow's wheel was built for
    lam.create_function(FunctionName="thumbnailer", Runtime=runtime, Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": THUMBNAILER})}, Timeout=60, MemorySize=512,
                        Layers=[layer["LayerVersionArn"]])
    lam.get_waiter("function_active_v2").wait(FunctionName="thumbnailer")
    lam.add_permission(FunctionName="thumbnailer", StatementId="s3", Action="lambda:InvokeFunction",
                       Principal="s3.amazonaws.com", SourceArn="arn:aws:s3:::gallery")
    s3.create_bucket(Bucket="gallery")
    s3.put_bucket_notification_configuration(Bucket="gallery", NotificationConfiguration={
        "LambdaFunctionConfigurations": [{
            "LambdaFunctionArn": lam.get_function(FunctionName="thumbnailer")["Configuration"]["FunctionArn"],
            "Events": ["s3:ObjectCreated:*"],
            "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "uploads/"}]}}}]})
    s3.put_object(Bucket="gallery", Key="uploads/sunset photo.png", Body=png(640, 480), ContentType="image/png")

    def thumbnail():
        try:
            return s3.get_object(Bucket="gallery", Key="thumbnails/sunset photo.png")["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
    data = wait_for(thumbnail, timeout=60)
    assert data, shared.gust("logs", "thumbnailer").stdout
    assert png_size(data) == (128, 96)
    # The thumbnail, under thumbnails/, did not trigger the function again (prefix filter).
    time.sleep(1)
    out = shared.gust("logs", "thumbnailer").stdout
    assert out.count("THUMBNAIL ") == 1


def test_a_bucket_as_on_failure_destination(shared):
    lam, s3, _, _ = clients(shared)
    s3.create_bucket(Bucket="failures")
    lam.create_function(FunctionName="alwaysfails", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                        Code={"ZipFile": make_zip({"app.py": "def handler(e, c):\n    raise ValueError('no')\n"})})
    status, code, message = error_of(lambda: lam.put_function_event_invoke_config(
        FunctionName="alwaysfails", DestinationConfig={"OnSuccess": {"Destination": "arn:aws:s3:::failures"}}))
    assert (status, code) == (400, "InvalidParameterValueException") and "on-failure" in message
    lam.put_function_event_invoke_config(FunctionName="alwaysfails", MaximumRetryAttempts=0,
                                         DestinationConfig={"OnFailure": {"Destination": "arn:aws:s3:::failures"}})
    lam.invoke(FunctionName="alwaysfails", InvocationType="Event", Payload=b'{"order": 7}')
    listed = wait_for(lambda: s3.list_objects_v2(Bucket="failures", Prefix="aws/lambda/async/alwaysfails/")
                      .get("Contents"), timeout=30)
    assert listed and len(listed) == 1
    record = json.loads(s3.get_object(Bucket="failures", Key=listed[0]["Key"])["Body"].read())
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestPayload"] == {"order": 7}
    assert record["responsePayload"]["errorType"] == "ValueError"


def test_multipart_upload_listings_page_past_common_prefixes(shared):
    _, s3, _, _ = clients(shared)
    s3.create_bucket(Bucket="uploads-paging")
    for key in ["a/1", "a/2", "b/1", "c"]:
        s3.create_multipart_upload(Bucket="uploads-paging", Key=key)
    seen, marker, pages = [], {}, 0
    while pages < 10:
        page = s3.list_multipart_uploads(Bucket="uploads-paging", Delimiter="/", MaxUploads=1, **marker)
        pages += 1
        seen += [p["Prefix"] for p in page.get("CommonPrefixes", [])] + [u["Key"] for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        marker = {"KeyMarker": page["NextKeyMarker"]}
        if page.get("NextUploadIdMarker"):
            marker["UploadIdMarker"] = page["NextUploadIdMarker"]
    assert seen == ["a/", "b/", "c"] and pages == 3


def test_a_form_post_is_refused_before_its_body_is_read(shared):
    import urllib.request, urllib.error
    request = urllib.request.Request(
        f"{shared.endpoint}/anybucket?X-Amz-Credential=x%2F20261206%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Signature=00",
        data=b"--b\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\n" + b"x" * 1024 + b"\r\n--b--\r\n",
        method="POST", headers={"Content-Type": "multipart/form-data; boundary=b"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 501 and b"NotImplemented" in info.value.read()
