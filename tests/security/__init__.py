"""Hostile inputs and faults, one file per class; each asserts the refusal and that good clients kept working.

- ``test_http_front``: bad Host/Origin, missing or foreign tokens, oversized and malformed bodies,
  session hijack, repeated guard headers.
- ``test_files_and_tokens``: links planted where Toolgate writes; no token in a project's file.
- ``test_grants``: "always" names exactly one tool; a session grant ends with its session.
- ``test_every_request_decided``: prompts, reads, subscriptions and completions decided, audited
  and counted alike; "always" only where it can be kept.
- ``test_starvation``: one agent's sessions and requests, slow clients, the connection cap.
- ``test_trust``: the shim's token goes only to a gateway that proves who it is.
- ``test_control_channel``: approvals only on the private socket; servers inherit nothing.
- ``test_faults``: a server that is down keeps its names and says why.
"""
