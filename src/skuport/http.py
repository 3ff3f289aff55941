"""The HTTP protocol ``skuport serve`` runs: uvicorn's h11 protocol, with errors in the error envelope.

uvicorn answers requests it cannot parse (a 0xFF byte in the request line, headers over the size limit)
itself, before the application sees them, with a plain-text body. Here they get the envelope every other
error has.
"""

from __future__ import annotations

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol


class EnvelopeH11Protocol(H11Protocol):
    """uvicorn's h11 protocol whose 400 for an unparsable request is ``{"error": {...}}`` JSON."""

    def send_400_response(self, msg: str) -> None:
        body = orjson.dumps(
            {
                "error": {
                    "code": "malformed_request",
                    "message": f"The HTTP request could not be read: {msg}.",
                    "details": [],
                }
            }
        )
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self.transport.close()
