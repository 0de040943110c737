# One image for both services; docker-compose.yml picks the subcommand.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
# .dockerignore keeps the host's node_modules, builds and data (with its secret) out of the image.
COPY . .
RUN npm run build
ENV HOST=0.0.0.0 DATA_DIR=/data
# The services run as the image's unprivileged `node` user, not root: a flaw in the server or in a
# hook cannot then change the image or the host's mounts beyond /data. /data is made theirs before
# VOLUME, so a new named volume starts out owned by them. (A volume first written by an older image
# that ran as root needs one `chown -R node:node /data`, see docker-compose.yml.)
RUN mkdir -p /data && chown node:node /data
VOLUME ["/data"]
USER node
ENTRYPOINT ["node", "bin/tuspass.js"]
CMD ["start"]
