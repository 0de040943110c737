# One image for both services; docker-compose.yml picks the subcommand.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev
COPY . .
RUN npm run build
ENV HOST=0.0.0.0 DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["node", "bin/tuspass.js"]
CMD ["start"]
