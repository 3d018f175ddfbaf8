"""What every HTTP service shares: the error body and handlers, the OpenAPI pieces
(bearer scheme, health, /metrics) and the Kafka producer and probe."""
