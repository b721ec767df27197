"""Listing through boto3: ListObjectsV2 and the older ListObjects (v1).

Sync tools walk a bucket with these, page by page, and treat a key missing
from a listing as deleted; so ordering (UTF-8 bytes), pagination that
neither skips nor repeats, delimiter folding and key encoding all have to
be exact.
"""

from urllib.parse import unquote_plus

import pytest

KEYS = [
    "a/1",
    "a/2",
    "a/b/3",
    "a/b/c/4",
    "b/5",
    "b+plus",
    "c",
    "d e/space",
    "zz",
    "é/accent",
    "日本/7",
]


@pytest.fixture
def listed_bucket(s3, bucket):
    for key in KEYS:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    return bucket


def byte_order(keys):
    return sorted(keys, key=lambda k: k.encode())


def test_list_everything_in_byte_order(s3, listed_bucket):
    answer = s3.list_objects_v2(Bucket=listed_bucket)
    assert [o["Key"] for o in answer["Contents"]] == byte_order(KEYS)
    assert answer["KeyCount"] == len(KEYS)
    assert answer["IsTruncated"] is False
    first = answer["Contents"][0]
    assert first["Size"] == len(first["Key"].encode())
    assert first["ETag"].startswith('"') and "LastModified" in first


def test_delimiter_folds_common_prefixes(s3, listed_bucket):
    top = s3.list_objects_v2(Bucket=listed_bucket, Delimiter="/")
    assert [o["Key"] for o in top.get("Contents", [])] == ["b+plus", "c", "zz"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == byte_order(
        ["a/", "b/", "d e/", "é/", "日本/"]
    )
    assert top["KeyCount"] == 3 + 5  # keys and prefixes both count

    inner = s3.list_objects_v2(Bucket=listed_bucket, Prefix="a/", Delimiter="/")
    assert [o["Key"] for o in inner["Contents"]] == ["a/1", "a/2"]
    assert [p["Prefix"] for p in inner["CommonPrefixes"]] == ["a/b/"]

    deeper = s3.list_objects_v2(Bucket=listed_bucket, Prefix="a/b/", Delimiter="/")
    assert [o["Key"] for o in deeper["Contents"]] == ["a/b/3"]
    assert [p["Prefix"] for p in deeper["CommonPrefixes"]] == ["a/b/c/"]


def test_prefix_without_delimiter(s3, listed_bucket):
    answer = s3.list_objects_v2(Bucket=listed_bucket, Prefix="a/b")
    assert [o["Key"] for o in answer["Contents"]] == ["a/b/3", "a/b/c/4"]
    none = s3.list_objects_v2(Bucket=listed_bucket, Prefix="nothing-here")
    assert none["KeyCount"] == 0 and "Contents" not in none


def test_start_after(s3, listed_bucket):
    answer = s3.list_objects_v2(Bucket=listed_bucket, StartAfter="b/5")
    expected = [k for k in byte_order(KEYS) if k.encode() > b"b/5"]
    assert [o["Key"] for o in answer["Contents"]] == expected
    # A StartAfter between keys, not itself a key, works the same.
    answer = s3.list_objects_v2(Bucket=listed_bucket, StartAfter="a/bz")
    assert answer["Contents"][0]["Key"] == "b+plus"


@pytest.mark.parametrize("page_size", [1, 2, 3, 5])
def test_pages_cover_every_key_once(s3, listed_bucket, page_size):
    keys, token, pages = [], None, 0
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=listed_bucket, MaxKeys=page_size, **extra)
        pages += 1
        assert page["KeyCount"] == len(page.get("Contents", []))
        assert page["KeyCount"] <= page_size
        keys += [o["Key"] for o in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
        assert pages <= len(KEYS), "pagination does not end"
    assert keys == byte_order(KEYS)
    assert pages == -(-len(KEYS) // page_size)


def test_pages_with_a_delimiter(s3, listed_bucket):
    """Prefixes count against MaxKeys and are not repeated across pages."""
    paginator = s3.get_paginator("list_objects_v2")
    keys, prefixes = [], []
    for page in paginator.paginate(
        Bucket=listed_bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
    ):
        keys += [o["Key"] for o in page.get("Contents", [])]
        prefixes += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
    assert keys == ["b+plus", "c", "zz"]
    assert prefixes == byte_order(["a/", "b/", "d e/", "é/", "日本/"])


def test_url_encoding_type(s3, listed_bucket):
    """With EncodingType=url the answer percent-encodes keys (so `+` must
    come back as %2B, a space as %20 or +); boto3 decodes that itself only
    when it chose the encoding, so here the raw form is checked."""
    raw = s3.list_objects_v2(Bucket=listed_bucket, EncodingType="url")
    assert raw.get("EncodingType") == "url"
    encoded = [o["Key"] for o in raw["Contents"]]
    assert [unquote_plus(k) for k in encoded] == byte_order(KEYS)
    assert not any(c in k for k in encoded for c in " é日")
    folded = s3.list_objects_v2(
        Bucket=listed_bucket, EncodingType="url", Delimiter="/", Prefix="d e/"
    )
    assert unquote_plus(folded["Prefix"]) == "d e/"
    assert [unquote_plus(o["Key"]) for o in folded["Contents"]] == ["d e/space"]


def test_list_objects_v1_with_marker(s3, listed_bucket):
    keys, marker = [], ""
    for _ in range(len(KEYS) + 1):
        page = s3.list_objects(Bucket=listed_bucket, MaxKeys=4, Marker=marker)
        contents = [o["Key"] for o in page.get("Contents", [])]
        keys += contents
        if not page["IsTruncated"]:
            break
        # Without a delimiter v1 has no NextMarker: the last key is next.
        marker = page.get("NextMarker") or contents[-1]
    assert keys == byte_order(KEYS)


@pytest.mark.shoal_only  # the mock server's v1 does not count prefixes in MaxKeys
def test_list_objects_v1_next_marker_with_a_delimiter(s3, listed_bucket):
    top = s3.list_objects(Bucket=listed_bucket, Delimiter="/", MaxKeys=3)
    assert top["IsTruncated"] is True
    assert top["NextMarker"]
    rest = s3.list_objects(Bucket=listed_bucket, Delimiter="/", Marker=top["NextMarker"])
    seen = [o["Key"] for o in top.get("Contents", []) + rest.get("Contents", [])]
    seen += [p["Prefix"] for p in top.get("CommonPrefixes", []) + rest.get("CommonPrefixes", [])]
    assert sorted(seen) == sorted(["b+plus", "c", "zz", "a/", "b/", "d e/", "é/", "日本/"])
