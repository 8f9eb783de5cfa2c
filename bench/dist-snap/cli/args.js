"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.USAGE = void 0;
exports.parseCommand = parseCommand;
const node_util_1 = require("node:util");
const errors_1 = require("../errors");
exports.USAGE = `Usage: fulcrum [command] [options]

Commands:
  (none)      run the load balancer
  validate    check the config file: prints "ok", or each problem as FILE:LINE:COL: message
  demo        three demo backends and Fulcrum in front of them (examples/quickstart.yaml)

Options:
  -c, --config FILE   config file (default: $FULCRUM_CONFIG, else ./fulcrum.yaml)
  -h, --help          show this help
  -v, --version       print the version

Signals: SIGHUP reloads the config; SIGTERM and SIGINT drain and stop.
Exit codes: 0 clean stop, 1 invalid config or a port that cannot be bound, 2 usage error.`;
/** argv (without node and the script) → what to do. Usage errors are FULCRUM_USAGE (exit 2). */
function parseCommand(argv, env) {
    let parsed;
    try {
        parsed = (0, node_util_1.parseArgs)({
            args: [...argv],
            allowPositionals: true,
            strict: true,
            options: {
                config: { type: 'string', short: 'c' },
                help: { type: 'boolean', short: 'h' },
                version: { type: 'boolean', short: 'v' },
            },
        });
    }
    catch (err) {
        throw new errors_1.FulcrumError('FULCRUM_USAGE', err.message.split('\n')[0]);
    }
    const { values, positionals } = parsed;
    if (values.help)
        return { kind: 'help' };
    if (values.version)
        return { kind: 'version' };
    if (positionals.length > 1)
        throw new errors_1.FulcrumError('FULCRUM_USAGE', `unexpected argument "${positionals[1]}"`);
    const config = values.config ?? (env.FULCRUM_CONFIG || './fulcrum.yaml');
    if (values.config === '')
        throw new errors_1.FulcrumError('FULCRUM_USAGE', '--config needs a file name');
    switch (positionals[0]) {
        case undefined: return { kind: 'run', config };
        case 'validate': return { kind: 'validate', config };
        case 'demo':
            if (values.config !== undefined)
                throw new errors_1.FulcrumError('FULCRUM_USAGE', 'demo runs examples/quickstart.yaml and takes no --config');
            return { kind: 'demo' };
        case 'help': return { kind: 'help' };
        default: throw new errors_1.FulcrumError('FULCRUM_USAGE', `unknown command "${positionals[0]}" (try --help)`);
    }
}
//# sourceMappingURL=args.js.map