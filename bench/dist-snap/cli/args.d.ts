export type Command = {
    readonly kind: 'run';
    readonly config: string;
} | {
    readonly kind: 'validate';
    readonly config: string;
} | {
    readonly kind: 'demo';
} | {
    readonly kind: 'help';
} | {
    readonly kind: 'version';
};
export declare const USAGE = "Usage: fulcrum [command] [options]\n\nCommands:\n  (none)      run the load balancer\n  validate    check the config file: prints \"ok\", or each problem as FILE:LINE:COL: message\n  demo        three demo backends and Fulcrum in front of them (examples/quickstart.yaml)\n\nOptions:\n  -c, --config FILE   config file (default: $FULCRUM_CONFIG, else ./fulcrum.yaml)\n  -h, --help          show this help\n  -v, --version       print the version\n\nSignals: SIGHUP reloads the config; SIGTERM and SIGINT drain and stop.\nExit codes: 0 clean stop, 1 invalid config or a port that cannot be bound, 2 usage error.";
/** argv (without node and the script) → what to do. Usage errors are FULCRUM_USAGE (exit 2). */
export declare function parseCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Command;
