"""TLS over a udptcp connection: the standard library's, through asyncio's own SSL layer.

``asyncio.sslproto.SSLProtocol`` is what ``loop.create_connection(ssl=...)`` and
``loop.start_tls`` put between a TCP transport and the application's protocol: it drives an
``ssl.SSLObject`` over memory buffers and presents the application with a transport of its
own. udptcp puts the same object over a :class:`~udptcp.transport.StreamTransport`. It does so
itself rather than through ``loop.start_tls``, because uvloop's ``start_tls`` accepts only
uvloop's own transports (it raises TypeError for any other), while ``SSLProtocol`` needs nothing
from the loop but futures and timers, so this works on every loop.

A TLS close is TLS's first: the application transport's ``close()`` sends close_notify, and
our FIN follows once the peer's close_notify has arrived (or ``ssl_shutdown_timeout`` has
passed). A reset or a FIN during the handshake fails it with ``ConnectionResetError``, a bad
certificate with ``ssl.SSLCertVerificationError``.
"""

from __future__ import annotations

import asyncio
import ssl
from asyncio.sslproto import SSLProtocol
from typing import cast

MIN_TLS_VERSION = ssl.TLSVersion.TLSv1_3
"""The oldest TLS version of the contexts udptcp makes: both ends are udptcp, hence recent."""


def client_context(cafile: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """A client context: TLS 1.3, the server's certificate and name checked against the
    system's CAs (or ``cafile``'s); ``verify=False`` checks nothing (tests, or trust on a
    private network only)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
    context.minimum_version = MIN_TLS_VERSION
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def server_context(certfile: str, keyfile: str | None = None) -> ssl.SSLContext:
    """A server context presenting ``certfile`` (with its chain; the key in it or in
    ``keyfile``), TLS 1.3."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = MIN_TLS_VERSION
    context.load_cert_chain(certfile, keyfile)
    return context


def client_ssl(
    ssl_arg: ssl.SSLContext | bool | None, host: str | None, server_hostname: str | None,
    ssl_handshake_timeout: float | None,
) -> tuple[ssl.SSLContext | None, str | None]:
    """The context and the name to check for a client's ``ssl=`` and ``server_hostname=``,
    validated as asyncio's ``create_connection`` does (True: :func:`client_context`)."""
    if not ssl_arg:
        if server_hostname is not None:
            raise ValueError("server_hostname is only meaningful with ssl")
        if ssl_handshake_timeout is not None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        return None, None
    context = client_context() if ssl_arg is True else ssl_arg
    if not isinstance(context, ssl.SSLContext):
        raise TypeError(f"ssl must be an ssl.SSLContext, True or None, got {type(ssl_arg).__name__}")
    if server_hostname is None:
        if not host:
            raise ValueError("you must set server_hostname when using ssl without a host")
        server_hostname = host
    return context, server_hostname


def server_ssl(ssl_arg: ssl.SSLContext | None, ssl_handshake_timeout: float | None) -> ssl.SSLContext | None:
    """A server's ``ssl=``, checked: a context with a certificate, or None."""
    if ssl_arg is None:
        if ssl_handshake_timeout is not None:
            raise ValueError("ssl_handshake_timeout is only meaningful with ssl")
        return None
    if not isinstance(ssl_arg, ssl.SSLContext):
        raise TypeError(
            f"ssl must be an ssl.SSLContext (see udptcp.tls.server_context), got {type(ssl_arg).__name__}"
        )
    return ssl_arg


def wrap(
    loop: asyncio.AbstractEventLoop, protocol: asyncio.BaseProtocol, context: ssl.SSLContext,
    waiter: asyncio.Future[None] | None, *, server_side: bool, server_hostname: str | None = None,
    call_connection_made: bool = True, ssl_handshake_timeout: float | None = None,
    ssl_shutdown_timeout: float | None = None,
) -> tuple[SSLProtocol, asyncio.Transport]:
    """asyncio's SSL layer for ``protocol``, and the transport ``protocol`` will be given.

    Set the first as the udptcp transport's protocol and call its ``connection_made``: the
    handshake starts, and ``waiter`` (if any) is done when it ends.
    """
    # typeshed has the waiter non-optional and the handshake timeout an int; asyncio takes None
    # and any number of seconds.
    layer = SSLProtocol(
        loop, protocol, context, waiter, server_side, server_hostname,  # type: ignore[arg-type]
        call_connection_made=call_connection_made,
        ssl_handshake_timeout=ssl_handshake_timeout,  # type: ignore[arg-type]
        ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    # Made by the constructor; kept here because the layer forgets it at connection_lost.
    return layer, cast(asyncio.Transport, layer._app_transport)


async def start_tls(
    transport: asyncio.Transport, protocol: asyncio.BaseProtocol, sslcontext: ssl.SSLContext, *,
    server_side: bool = False, server_hostname: str | None = None,
    ssl_handshake_timeout: float | None = None, ssl_shutdown_timeout: float | None = None,
) -> asyncio.Transport:
    """Upgrade an open udptcp connection to TLS, as ``loop.start_tls`` does (on any loop).

    Returns the transport ``protocol`` must use from now on. On failure the connection is
    closed and the error (``ssl.SSLError``, ``ConnectionResetError``, ``TimeoutError``) raised.
    """
    if not isinstance(sslcontext, ssl.SSLContext):
        raise TypeError(f"sslcontext must be an ssl.SSLContext, got {type(sslcontext).__name__}")
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    layer, app_transport = wrap(
        loop, protocol, sslcontext, waiter, server_side=server_side,
        server_hostname=server_hostname, call_connection_made=False,
        ssl_handshake_timeout=ssl_handshake_timeout, ssl_shutdown_timeout=ssl_shutdown_timeout,
    )
    # As loop.start_tls: nothing reaches the layer before its connection_made.
    transport.pause_reading()
    transport.set_protocol(layer)
    made = loop.call_soon(layer.connection_made, transport)
    resumed = loop.call_soon(transport.resume_reading)
    try:
        await waiter
    except BaseException:
        transport.close()
        made.cancel()
        resumed.cancel()
        raise
    return app_transport
