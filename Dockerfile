# One image for every app and tool; the command picks which one runs (docker-compose.yml).
# Stage 1 compiles the TypeScript to dist/ (npm run build: esbuild, one file per entry point).
FROM node:20-bookworm-slim AS build
WORKDIR /srv
COPY package.json package-lock.json ./
COPY apps/billing-api/package.json apps/billing-api/
COPY apps/webhook-gateway/package.json apps/webhook-gateway/
COPY apps/admin-portal/package.json apps/admin-portal/
COPY apps/payment-worker/package.json apps/payment-worker/
COPY apps/role-worker/package.json apps/role-worker/
COPY apps/scheduler/package.json apps/scheduler/
COPY libs/ libs/
COPY tools/ tools/
RUN npm ci --no-audit --no-fund
COPY tsconfig.base.json tsconfig.json ./
COPY apps/ apps/
RUN npm run build

# Stage 2 runs plain JavaScript with the production dependencies only (tsx is not among them).
FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /srv
COPY package.json package-lock.json ./
COPY apps/billing-api/package.json apps/billing-api/
COPY apps/webhook-gateway/package.json apps/webhook-gateway/
COPY apps/admin-portal/package.json apps/admin-portal/
COPY apps/payment-worker/package.json apps/payment-worker/
COPY apps/role-worker/package.json apps/role-worker/
COPY apps/scheduler/package.json apps/scheduler/
COPY libs/ libs/
COPY tools/ tools/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /srv/dist dist/
# elk-setup reads the index template, ILM policy and Kibana objects from here.
COPY deploy/elk/ deploy/elk/
USER node
CMD ["node", "--enable-source-maps", "--max-semi-space-size=4", "--max-old-space-size=96", "dist/billing-api/main.js"]
