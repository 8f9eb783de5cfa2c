"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.interpolate = interpolate;
exports.interpolateDocument = interpolateDocument;
/**
 * `${NAME}` interpolation. It runs on the parsed YAML tree, not on the raw text,
 * so a value can never inject YAML structure and each unset variable is reported
 * at the position of the scalar that names it. Keys are left alone.
 */
const yaml_1 = require("yaml");
const REFERENCE = /\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g;
/** Replaces every `${NAME}` in `text`; unset variables become "" and are listed in `missing`. */
function interpolate(text, env) {
    const missing = [];
    const value = text.replace(REFERENCE, (_whole, name) => {
        const v = env[name];
        if (v === undefined) {
            missing.push(name);
            return '';
        }
        return v;
    });
    return { value, missing };
}
/**
 * Interpolates every string scalar value of `doc` in place. An unquoted scalar
 * that becomes a plain number or boolean (`port: ${PORT}`) is typed as YAML
 * would have typed it had the value been written there.
 */
function interpolateDocument(doc, env) {
    const problems = [];
    (0, yaml_1.visit)(doc, {
        Scalar(key, node) {
            if (key === 'key' || typeof node.value !== 'string' || !node.value.includes('${'))
                return;
            const { value, missing } = interpolate(node.value, env);
            for (const name of missing)
                problems.push({ node, message: `environment variable ${name} is not set` });
            node.value = node.type === yaml_1.Scalar.PLAIN ? retype(value) : value;
        },
    });
    return problems;
}
function retype(value) {
    if (/^-?\d+(\.\d+)?$/.test(value))
        return Number(value);
    if (value === 'true')
        return true;
    if (value === 'false')
        return false;
    return value;
}
//# sourceMappingURL=env.js.map