#!/usr/bin/python3
"""A real RTSP camera for the tests: GStreamer's RTSP server (gst-rtsp-server, through
python3-gi) serving a live H.264 test pattern and AAC tone at rtsp://127.0.0.1:PORT/cam.

Usage: rtsp_server.py PORT [KEYFRAME_INTERVAL_FRAMES] [h264|h265]

Prints "ready rtsp://127.0.0.1:PORT/cam" on stdout once the server is attached, and
"client <ip>" each time a client connects (the tests count pulls with it).
The media is shared between clients and rebuilt when the last one leaves.
"""
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def aac_encoder():
    # avenc_aac is in gstreamer1.0-libav; voaacenc (plugins-bad) where present.
    for name in ("avenc_aac", "voaacenc", "fdkaacenc"):
        if Gst.ElementFactory.find(name) is not None:
            return name
    raise SystemExit("no AAC encoder (avenc_aac, voaacenc, fdkaacenc) in this GStreamer")


def main():
    Gst.init(None)
    port = sys.argv[1]
    gop = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    codec = sys.argv[3] if len(sys.argv) > 3 else "h264"
    if codec == "h264":
        video = (
            f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate=500 "
            "! video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1 "
        )
    elif codec == "h265":
        video = (
            f"x265enc tune=zerolatency speed-preset=ultrafast key-int-max={gop} bitrate=500 "
            "! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=-1 "
        )
    else:
        raise SystemExit(f"unknown codec {codec!r}: h264 or h265")
    launch = (
        "( videotestsrc is-live=true pattern=ball "
        "! video/x-raw,width=320,height=240,framerate=30/1 "
        f"! {video}"
        "audiotestsrc is-live=true wave=sine freq=440 "
        "! audio/x-raw,rate=48000,channels=2 "
        f"! audioconvert ! {aac_encoder()} bitrate=64000 ! rtpmp4gpay name=pay1 pt=97 )"
    )
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)

    def on_client(_server, client):
        conn = client.get_connection()
        ip = conn.get_ip() if conn is not None else "?"
        print(f"client {ip}", flush=True)

    server.connect("client-connected", on_client)
    if server.attach(None) == 0:
        raise SystemExit(f"cannot listen on port {port}")
    print(f"ready rtsp://127.0.0.1:{server.get_bound_port()}/cam", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
