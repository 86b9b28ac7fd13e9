"""The allocator setting of the Si -> Ge jobs (core.allocator)."""

from __future__ import annotations

import ctypes
import sys

import pytest

from mlip_transfer.core import allocator


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_takes_the_three_settings():
    assert allocator.keep_freed_memory() is True


def test_without_glibc_mallopt_the_allocator_is_left_alone(monkeypatch):
    def no_libc(name):
        raise OSError(f"{name}: cannot open shared object file")

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    assert allocator.keep_freed_memory() is False
    monkeypatch.setattr(sys, "platform", "darwin")
    assert allocator.keep_freed_memory() is False


def test_a_refused_setting_is_reported(monkeypatch):
    class Libc:
        @staticmethod
        def mallopt(param, value):
            return 0 if param == allocator.M_TOP_PAD else 1

    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(ctypes, "CDLL", lambda name: Libc())
    assert allocator.keep_freed_memory() is False
