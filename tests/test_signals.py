"""The signal-type registry: one place that names, validates and compares every hash type."""

from __future__ import annotations

import json

import pytest

import pyhash
from pyhash import vpdq
from pyhash.signals import InvalidHashError

PDQ_A = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b22"
PDQ_B = "f8f8f0cee0f4a84f06370a22038f63f0b36e2ed596621e1d33e6b39c4e9c9b44"  # 4 bits away, 128 set


def test_registry_names_and_wire_names() -> None:
    assert list(pyhash.SIGNAL_TYPES) == ["pdq", "md5", "vpdq"]
    assert pyhash.signal_type("pdq").wire_name == "ImagePDQ"
    assert pyhash.signal_type("md5").wire_name == "VideoMD5"
    assert pyhash.signal_type("vpdq").wire_name is None
    assert pyhash.signal_type_by_wire_name("ImagePDQ").name == "pdq"
    assert pyhash.signal_type("pdq").threshold == 31


def test_pdq_validation_normalises_and_names_the_rule() -> None:
    pdq_type = pyhash.signal_type("pdq")
    assert pdq_type.validate(PDQ_A.upper()) == PDQ_A
    for bad in ["", PDQ_A[:-1], "g" + PDQ_A[1:], " " + PDQ_A[1:], PDQ_A[:-1] + "\u0661"]:
        with pytest.raises(InvalidHashError, match="64 hexadecimal"):
            pdq_type.validate(bad)
    with pytest.raises(InvalidHashError, match="at most 64 characters"):
        pdq_type.validate(PDQ_A + "0")
    with pytest.raises(InvalidHashError, match="too small"):
        pdq_type.validate("0" * 64)
    with pytest.raises(InvalidHashError, match="string"):
        pdq_type.validate(12345)  # type: ignore[arg-type]


def test_pdq_distance_and_match() -> None:
    pdq_type = pyhash.signal_type("pdq")
    assert pdq_type.distance(PDQ_A, PDQ_B) == 4
    assert pdq_type.matches(PDQ_A, PDQ_B)
    far = format(int(PDQ_A, 16) ^ ((1 << 32) - 1), "064x")  # 32 bits flipped
    assert not pdq_type.matches(PDQ_A, far)


def test_md5_is_exact_match_only() -> None:
    md5 = pyhash.signal_type("md5")
    value = "D41D8CD98F00B204E9800998ECF8427E"
    assert md5.validate(value) == value.lower()
    with pytest.raises(InvalidHashError, match="32 hexadecimal"):
        md5.validate(value[:-2])
    assert md5.matches(value.lower(), value.lower())
    assert not md5.matches(value.lower(), "0" * 32)


def test_vpdq_validation_and_matching() -> None:
    vpdq_type = pyhash.signal_type("vpdq")
    frames = [vpdq.VpdqFeature(i, PDQ_A if i % 2 else PDQ_B, 100, float(i)) for i in range(4)]
    signal = vpdq.to_threatexchange_signal(frames)
    assert vpdq_type.validate(signal) == signal
    assert vpdq_type.distance(signal, signal) == 0
    other = vpdq.to_threatexchange_signal([vpdq.VpdqFeature(0, "a" * 64, 100, 0.0)])
    assert not vpdq_type.matches(signal, other)
    for bad in ["", "[]", "not json", json.dumps(["xyz,100,0.000"]), json.dumps([PDQ_A + ",101,0.000"])]:
        with pytest.raises(InvalidHashError, match="vPDQ"):
            vpdq_type.validate(bad)


def test_unknown_names_list_the_known_ones() -> None:
    with pytest.raises(InvalidHashError, match="pdq, md5, vpdq"):
        pyhash.signal_type("tmk")
    with pytest.raises(InvalidHashError, match="ImagePDQ"):
        pyhash.signal_type_by_wire_name("VideoTMK")
