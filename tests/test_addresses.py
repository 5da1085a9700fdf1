"""``host:port`` as every command prints and reads it, IPv6 hosts bracketed."""

from __future__ import annotations

import re

import pytest

from udptcp.addresses import format_address, parse_address


@pytest.mark.parametrize(
    ("addr", "text"),
    [
        (("127.0.0.1", 9000), "127.0.0.1:9000"),
        (("::1", 9000, 0, 0), "[::1]:9000"),
        (("localhost", 0), "localhost:0"),
    ],
)
def test_what_is_printed_reads_back(addr: tuple[object, ...], text: str) -> None:
    assert format_address(addr) == text
    assert parse_address(text) == addr[:2]


def test_no_address_yet_is_a_question_mark() -> None:
    assert format_address(None) == "?"


def test_an_unbracketed_ipv6_host_takes_the_last_colon_as_the_port() -> None:
    assert parse_address("::1:9000") == ("::1", 9000)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("9000", "is not HOST:PORT"),
        (":9000", "is not HOST:PORT"),
        ("host:", "is not a number in [0, 65535]"),
        ("host:http", "is not a number in [0, 65535]"),
        ("host:65536", "is not a number in [0, 65535]"),
    ],
)
def test_a_bad_address_says_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(complaint)):
        parse_address(text)
