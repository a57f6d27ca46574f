# One image for every app and tool; the command picks which one runs.
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
COPY tsconfig.base.json tsconfig.json ./
COPY apps/ apps/
USER node
# e.g. `node --import tsx apps/billing-api/src/main.ts`; tsx is a runtime dependency.
CMD ["node", "--import", "tsx", "apps/billing-api/src/main.ts"]
