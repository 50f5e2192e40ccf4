# Stand-in for the manifests' pinned Redis image (redis:7.2.11-alpine) where no registry
# answers: Debian bookworm's redis-server (7.0) and redis-cli, with sh. `npm run rehearse`
# builds it under the manifests' tag and says so; nothing else uses it.
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends redis-server redis-tools \
 && rm -rf /var/lib/apt/lists/*
LABEL dev.levee.stand-in="Debian bookworm redis-server"
CMD ["redis-server"]
