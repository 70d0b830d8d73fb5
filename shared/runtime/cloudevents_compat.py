"""One import point for the cloudevents SDK's v1 API.

functions-framework pins cloudevents 1.x (`cloudevents.http`, `cloudevents.kafka`);
kn func's func-python needs cloudevents 2.x, which keeps the same API under
`cloudevents.v1`. Importing through here lets the edge run on either.
"""

try:  # cloudevents 2.x
    from cloudevents.v1 import kafka as ce_kafka
    from cloudevents.v1.http import CloudEvent, from_http
except ImportError:  # cloudevents 1.x
    from cloudevents import kafka as ce_kafka
    from cloudevents.http import CloudEvent, from_http

__all__ = ["CloudEvent", "ce_kafka", "from_http"]
