// `node --import=@billing/ci/ts-loader`: every project's tests load their TypeScript through this
// (each project's "tap.node-arg", with "!@tapjs/typescript" in "tap.plugin"). The default plugin ran
// ts-node, which loaded the TypeScript compiler into every test process: about 3.4 s of CPU a
// file of libs/billing-core, twice what the test itself took. Here esbuild strips the types, one
// file at a time (isolatedModules holds everywhere), and keeps the lines as written with an inline
// source map, so tap's coverage counts statements and branches where they are (tsx minifies the
// whitespace: each file then counted as one line).
import { register } from 'node:module';

register('./ts-hooks.mjs', import.meta.url);
