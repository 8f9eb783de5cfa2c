#!/usr/bin/env node
"use strict";
var __importDefault = (this && this.__importDefault) || function (mod) {
    return (mod && mod.__esModule) ? mod : { "default": mod };
};
Object.defineProperty(exports, "__esModule", { value: true });
const node_path_1 = __importDefault(require("node:path"));
const node_fs_1 = require("node:fs");
const args_1 = require("./cli/args");
const demo_1 = require("./cli/demo");
const config_1 = require("./config");
const errors_1 = require("./errors");
const log_1 = require("./log");
const server_1 = require("./server");
function version() {
    const pkg = JSON.parse((0, node_fs_1.readFileSync)(node_path_1.default.join(__dirname, '..', 'package.json'), 'utf8'));
    return pkg.version;
}
/** Print a user error as lines on stderr and exit with its code; never a stack trace. */
function fail(err) {
    if (err instanceof Error && (0, errors_1.isFulcrumError)(err)) {
        if (err.code === 'FULCRUM_USAGE') {
            process.stderr.write(`fulcrum: ${err.message}\n${args_1.USAGE.split('\n')[0]}\n`);
            process.exit(2);
        }
        process.stderr.write(`${err.message}\n`);
        process.exit(1);
    }
    process.stderr.write(`fulcrum: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
}
async function run(config, extra) {
    const logger = (0, log_1.createLogger)(config.log);
    const fulcrum = new server_1.Fulcrum(config, { logger });
    await fulcrum.start();
    let stopping = false;
    const stop = (signal) => {
        if (stopping)
            return;
        stopping = true;
        logger.info({ signal, timeoutMs: config.shutdownTimeoutMs }, 'draining: no new connections, waiting for in-flight requests');
        fulcrum.stop().then(async () => {
            await extra?.();
            logger.info('stopped');
            logger.flush();
            process.exit(0);
        }, (err) => {
            logger.error({ err }, 'error while stopping');
            process.exit(1);
        });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGHUP', () => {
        logger.warn('SIGHUP: reload is not available in this version; restart to apply config changes');
    });
}
async function main(cmd) {
    switch (cmd.kind) {
        case 'help':
            process.stdout.write(`${args_1.USAGE}\n`);
            return;
        case 'version':
            process.stdout.write(`${version()}\n`);
            return;
        case 'validate':
            try {
                (0, config_1.loadConfig)(cmd.config);
            }
            catch (err) {
                if (err instanceof errors_1.ConfigError) {
                    process.stderr.write(`${err.message}\n`);
                    process.exit(1);
                }
                throw err;
            }
            process.stdout.write('ok\n');
            return;
        case 'run':
            await run((0, config_1.loadConfig)(cmd.config));
            return;
        case 'demo': {
            const config = (0, config_1.loadConfig)(node_path_1.default.join(__dirname, '..', 'examples', 'quickstart.yaml'));
            const backends = [];
            const pool = config.pools[0];
            for (const b of pool.backends) {
                const u = new URL(b.url);
                backends.push(await (0, demo_1.startDemoBackend)(b.name, u.hostname, Number(u.port)));
            }
            const stopBackends = () => Promise.all(backends.map((s) => new Promise((r) => {
                s.closeAllConnections();
                s.close(() => r());
            }))).then(() => undefined);
            try {
                await run(config, stopBackends);
            }
            catch (err) {
                await stopBackends();
                throw err;
            }
            const l = config.listeners[0];
            process.stderr.write([
                '',
                `Fulcrum demo: ${pool.backends.length} backends behind http://${l.host}:${l.port} (${pool.strategy}).`,
                `  curl -s http://${l.host}:${l.port}/hello`,
                `  dashboard and API: http://${config.admin.host}:${config.admin.port}/api/pools`,
                'Ctrl-C stops it.',
                '',
            ].join('\n'));
            return;
        }
    }
}
let cmd;
try {
    cmd = (0, args_1.parseCommand)(process.argv.slice(2), process.env);
}
catch (err) {
    fail(err);
}
main(cmd).catch(fail);
//# sourceMappingURL=cli.js.map