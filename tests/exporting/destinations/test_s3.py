"""S3 destination against a real S3 server (moto), read back with an independent boto3 client."""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from moto.core.authorization import enable_iam_authentication

from skuport.exporting.destinations import get_destination, validate_config
from skuport.exporting.destinations.base import Delivery, DeliveryError, DestinationConfigError
from skuport.exporting.destinations.s3 import S3Destination
from skuport.secrets import decrypt_config, encrypt_config, install_log_redaction
from tests.exporting.destinations import servers

SECRET = "s3-secret-key-do-not-leak-7f3a"
MiB = 1024 * 1024


def _config(endpoint: str, bucket: str, **extra: Any) -> dict[str, Any]:
    return {
        "bucket": bucket,
        "path": "feeds/products/",
        "region": "eu-west-1",
        "endpointUrl": endpoint,
        "accessKeyId": "AKIAEXPORTER",
        "secretAccessKey": SECRET,
        **extra,
    }


def test_small_file_lands_with_its_content_type_and_encoding(
    moto_endpoint: str, s3_bucket: Any, make_file: Callable[..., Delivery]
) -> None:
    bucket, reader = s3_bucket
    body = gzip.compress(b"sku,name\nA-1,Shirt\n")
    delivery = make_file(body, "products-2026-03-08.csv.gz", content_type="application/gzip")

    path = get_destination("s3", _config(moto_endpoint, bucket)).deliver(delivery)

    assert path == f"s3://{bucket}/feeds/products/products-2026-03-08.csv.gz"
    obj = reader.get_object(Bucket=bucket, Key="feeds/products/products-2026-03-08.csv.gz")
    assert obj["Body"].read() == body
    # a .csv.gz is a gzip file: no Content-Encoding that a reader would silently undo
    assert obj["ContentType"] == "application/gzip"
    assert "ContentEncoding" not in obj


def test_large_file_goes_up_in_parts_and_appears_whole(
    moto_endpoint: str, s3_bucket: Any, make_file: Callable[..., Delivery]
) -> None:
    bucket, reader = s3_bucket
    body = servers.random_bytes(6 * MiB + 123)
    delivery = make_file(body, "big.bin", content_type="application/octet-stream")

    S3Destination(_config(moto_endpoint, bucket)).deliver(delivery)

    head = reader.head_object(Bucket=bucket, Key="feeds/products/big.bin")
    assert head["ETag"].strip('"').endswith("-2"), "a multipart upload of two parts"
    assert head["ContentLength"] == len(body)
    assert reader.get_object(Bucket=bucket, Key="feeds/products/big.bin")["Body"].read() == body
    assert reader.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_redelivery_of_the_same_run_overwrites_the_same_key(
    moto_endpoint: str, s3_bucket: Any, make_file: Callable[..., Delivery]
) -> None:
    bucket, reader = s3_bucket
    dest = S3Destination(_config(moto_endpoint, bucket, path=""))
    dest.deliver(make_file(b"first", "feed.csv"))
    dest.deliver(make_file(b"second", "feed.csv"))
    assert reader.get_object(Bucket=bucket, Key="feed.csv")["Body"].read() == b"second"
    assert [o["Key"] for o in reader.list_objects_v2(Bucket=bucket)["Contents"]] == ["feed.csv"]


def test_missing_bucket_says_which_bucket_to_check(
    moto_endpoint: str, make_file: Callable[..., Delivery]
) -> None:
    dest = S3Destination(_config(moto_endpoint, "no-such-bucket-here"))
    with pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(b"x"))
    assert info.value.message == (
        "S3 PutObject failed: The specified bucket does not exist (404). "
        "Check that bucket 'no-such-bucket-here' exists in region 'eu-west-1'."
    )
    assert info.value.status_code == 502


def test_access_denied_reads_like_the_seed(
    moto_endpoint: str, s3_bucket: Any, make_file: Callable[..., Delivery]
) -> None:
    bucket, reader = s3_bucket
    iam = boto3.client(
        "iam",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="admin",
        aws_secret_access_key="admin",
    )
    iam.create_user(UserName="no-permissions")
    key = iam.create_access_key(UserName="no-permissions")["AccessKey"]
    dest = S3Destination(
        _config(moto_endpoint, bucket, accessKeyId=key["AccessKeyId"], secretAccessKey=key["SecretAccessKey"])
    )

    with enable_iam_authentication(), pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(b"x"))

    assert info.value.message == (
        f"S3 PutObject failed: Access Denied (403). Check IAM permissions for bucket '{bucket}'."
    )
    assert key["SecretAccessKey"] not in info.value.message
    assert "Contents" not in reader.list_objects_v2(Bucket=bucket)


def test_unknown_access_key_points_at_the_credentials(
    moto_endpoint: str, s3_bucket: Any, make_file: Callable[..., Delivery]
) -> None:
    bucket, _ = s3_bucket
    dest = S3Destination(_config(moto_endpoint, bucket))
    with enable_iam_authentication(), pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(b"x"))
    assert "(403)" in info.value.message
    assert "Check accessKeyId and secretAccessKey" in info.value.message
    assert SECRET not in info.value.message


def test_unreachable_endpoint(closed_port: int, make_file: Callable[..., Delivery]) -> None:
    dest = S3Destination(_config(f"http://127.0.0.1:{closed_port}", "exports"))
    with pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(b"x"))
    assert info.value.transient  # a run-level retry may succeed
    assert info.value.message == (
        f"S3 PutObject failed: could not connect to http://127.0.0.1:{closed_port}"
        ". Check endpointUrl/region and that the server can reach it."
    )


def test_endpoint_that_never_answers_times_out(black_hole: int, make_file: Callable[..., Delivery]) -> None:
    dest = S3Destination(_config(f"http://127.0.0.1:{black_hole}", "exports", timeoutSeconds=0.3))
    dest.max_attempts = 1
    started = time.monotonic()
    with pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(b"x"))
    assert "timed out after 0.3 s" in info.value.message
    # One attempt: botocore waits up to 1 s for "100 Continue", then the 0.3 s read timeout.
    assert time.monotonic() - started < 5


def test_server_error_mid_upload_aborts_the_multipart_upload(
    moto_endpoint: str,
    s3_bucket: Any,
    fault_proxy: Callable[[int], servers.FaultProxy],
    make_file: Callable[..., Delivery],
) -> None:
    bucket, reader = s3_bucket
    proxy = fault_proxy(int(moto_endpoint.rsplit(":", 1)[1]))
    s3_error = (
        b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
        b"<Message>We encountered an internal error. Please try again.</Message></Error>"
    )
    proxy.rule = lambda method, path, _i: (
        (500, {"Content-Type": "application/xml"}, s3_error)
        if method == "PUT" and "partNumber=2" in path
        else None
    )
    dest = S3Destination(_config(f"http://127.0.0.1:{proxy.port}", bucket))

    with pytest.raises(DeliveryError) as info:
        dest.deliver(make_file(servers.random_bytes(6 * MiB), "big.csv"))

    assert info.value.message == (
        "S3 UploadPart failed: We encountered an internal error. Please try again "
        "(500). The S3 service failed or throttled; the run can be retried."
    )
    assert info.value.transient
    assert any("partNumber=1" in path for _m, path, _n in proxy.seen), "the first part did go up"
    assert reader.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == [], "multipart upload aborted"
    assert "Contents" not in reader.list_objects_v2(Bucket=bucket), "no partial object is visible"


def test_connection_test_checks_the_bucket(moto_endpoint: str, s3_bucket: Any) -> None:
    bucket, _ = s3_bucket
    S3Destination(_config(moto_endpoint, bucket)).test_connection()
    with pytest.raises(DeliveryError, match="S3 HeadBucket failed"):
        S3Destination(_config(moto_endpoint, "missing-bucket-x")).test_connection()


def test_secret_stays_out_of_errors_and_debug_logs(
    moto_endpoint: str, caplog: pytest.LogCaptureFixture, make_file: Callable[..., Delivery]
) -> None:
    install_log_redaction(caplog.handler)
    config = decrypt_config("s3", encrypt_config("s3", _config(moto_endpoint, "no-such-bucket-here")))
    with caplog.at_level(logging.DEBUG), pytest.raises(DeliveryError) as info:
        get_destination("s3", config).deliver(make_file(b"x"))
    assert caplog.records, "debug logging was captured"
    assert SECRET not in caplog.text
    assert SECRET not in str(info.value) and SECRET not in repr(info.value.envelope())


def test_config_validation() -> None:
    seed = {"bucket": "sigma-exports", "path": "feeds/products/", "region": "eu-west-1"}
    assert validate_config("s3", seed) == {
        "bucket": "sigma-exports",
        "path": "feeds/products/",
        "region": "eu-west-1",
        "timeoutSeconds": 60,
    }
    for bad in (
        {"path": "x"},
        {"bucket": "Bad_Bucket"},
        {"bucket": "ok-bucket", "accessKeyId": "only-id"},
        {"bucket": "ok-bucket", "path": "../up"},
        {"bucket": "ok-bucket", "unknown": 1},
        {"bucket": "ok-bucket", "endpointUrl": "ftp://x"},
    ):
        with pytest.raises(DestinationConfigError) as info:
            validate_config("s3", bad)
        assert info.value.status_code == 422 and info.value.details
