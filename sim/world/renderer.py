"""Which renderer draws a PyBullet client's camera images, and keeping the EGL plugin's prints
out of stdout.

The EGL plugin shipped inside pybullet renders headless (Mesa llvmpipe on a CPU). It must be
loaded before any body is created, or it silently renders an empty scene, so `open_client` loads
it first thing. Once it is loaded, every `getCameraImage` of that client goes through it whatever
renderer is asked for; without it, PyBullet's CPU TinyRenderer draws. The two agree on geometry,
and the ground and sky look the same with both (the camera draws them), but EGL shades the actors
its own way (not TinyRenderer's Lambert shading with the world's `render_options`: an upward face
comes out at 0.5-0.75 of its colour). Measured on the 2-core dev machine (320x192, dense_traffic,
24 actors): getCameraImage of the actors ~3-7 ms with TinyRenderer against ~30-50 ms with EGL on
llvmpipe (a fixed cost of the plugin, the same for an empty scene), and building a World takes
~0.05 s with TinyRenderer against ~0.4-0.6 s with EGL (GL context). So "auto" picks EGL only where
a GPU device exists and the plugin's GL renderer is not a CPU one. The EGL plugin also prints to
stdout on every frame; `c_stdout_silenced` keeps that out.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import importlib.util
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass

import pybullet as p

RENDERERS = ("auto", "egl", "tiny")
SOFTWARE_GL = ("llvmpipe", "softpipe", "swrast", "swiftshader")  # GL renderers that run on the CPU


def egl_plugin_path() -> str | None:
    """File of the EGL renderer plugin shipped inside pybullet, or None."""
    spec = importlib.util.find_spec("eglRenderer")
    return None if spec is None else spec.origin


def gpu_device_present() -> bool:
    """Whether the machine has a GPU device node (DRM render node or NVIDIA device)."""
    return bool(glob.glob("/dev/dri/renderD*") or glob.glob("/dev/nvidia[0-9]*"))


@contextlib.contextmanager
def _c_stdout_to(fd: int) -> Iterator[None]:
    """Point file descriptor 1 (what C code writes to stdout) at `fd` meanwhile.

    Python's and C's buffers are flushed on both sides, so nothing printed before or after is lost
    or redirected. Without a C library handle or a file descriptor 1 nothing is redirected.
    """
    libc, saved = None, -1
    try:
        libc = ctypes.CDLL(None)
        if sys.stdout is not None:
            sys.stdout.flush()
        saved = os.dup(1)
    except OSError:
        pass
    if libc is None or saved < 0:
        yield
        return
    libc.fflush(None)
    try:
        os.dup2(fd, 1)
        yield
    finally:
        libc.fflush(None)
        os.dup2(saved, 1)
        os.close(saved)


@contextlib.contextmanager
def c_stdout_silenced(enabled: bool = True) -> Iterator[None]:
    """Send what C code writes to stdout to /dev/null meanwhile.

    The EGL plugin prints its GL set-up when it loads and a line ("ven = ...") on every rendered
    frame, which would pollute the stdout of any program that renders.
    """
    if not enabled:
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        with _c_stdout_to(devnull):
            yield
    finally:
        os.close(devnull)


@contextlib.contextmanager
def c_stdout_captured() -> Iterator[list[str]]:
    """Keep what C code writes to stdout meanwhile: the yielded list gets its lines on exit."""
    lines: list[str] = []
    with tempfile.TemporaryFile() as f:
        with _c_stdout_to(f.fileno()):
            yield lines
        f.seek(0)
        lines.extend(f.read().decode(errors="replace").splitlines())


def gl_renderer_name(plugin_log: list[str]) -> str | None:
    """The GL_RENDERER the EGL plugin reported when it loaded (its stdout lines), or None."""
    for line in plugin_log:
        if line.startswith("GL_RENDERER="):
            return line.split("=", 1)[1].strip()
    return None


@dataclass(frozen=True)
class RenderClient:
    """A PyBullet DIRECT client and the renderer that draws its camera images."""

    client: int
    renderer_name: str  # "egl" (the EGL plugin is loaded) or "tiny" (TinyRenderer)
    gl_renderer: str | None  # the EGL plugin's GL_RENDERER, when it was loaded


def open_client(renderer: str, plugin_path: str | None, gpu_present: bool) -> RenderClient:
    """Connect a DIRECT client, with the EGL plugin loaded where `renderer` asks for it.

    renderer "tiny" never loads the plugin; "egl" loads it (RuntimeError if it does not load);
    "auto" loads it only where `gpu_present`, and starts again without it when its GL renderer
    runs on the CPU: there EGL (Mesa llvmpipe) costs a fixed ~30 ms a frame whatever is drawn,
    several times TinyRenderer's cost for our scenes. plugin_path: the plugin's file
    (`egl_plugin_path()`), None where it is not installed. Call this before any body is created
    in the client: the plugin renders an empty scene otherwise.
    """
    if renderer not in RENDERERS:
        raise ValueError(f"renderer must be auto, egl or tiny, got {renderer!r}")
    client = p.connect(p.DIRECT)
    if renderer == "tiny" or (renderer == "auto" and not gpu_present):
        return RenderClient(client, "tiny", None)
    plugin, gl_renderer = -1, None
    if plugin_path is not None:
        with c_stdout_captured() as log:
            plugin = p.loadPlugin(plugin_path, "_eglRendererPlugin", physicsClientId=client)
        gl_renderer = gl_renderer_name(log)
    if plugin < 0 and renderer == "egl":
        p.disconnect(client)
        raise RuntimeError(
            "renderer='egl' but pybullet's EGL renderer plugin did not load "
            f"(plugin file: {plugin_path}); use renderer='tiny' or 'auto'"
        )
    if plugin < 0:
        return RenderClient(client, "tiny", gl_renderer)
    software = any(name in (gl_renderer or "").lower() for name in SOFTWARE_GL)
    if renderer == "auto" and software:  # start again without the plugin
        with c_stdout_silenced():
            p.disconnect(client)
        return RenderClient(p.connect(p.DIRECT), "tiny", gl_renderer)
    return RenderClient(client, "egl", gl_renderer)
