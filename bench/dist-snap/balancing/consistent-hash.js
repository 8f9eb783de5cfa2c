"use strict";
Object.defineProperty(exports, "__esModule", { value: true });
exports.createConsistentHash = exports.ConsistentHash = exports.MAX_RING_POINTS = exports.VNODES_PER_WEIGHT = void 0;
exports.murmur3 = murmur3;
exports.buildRing = buildRing;
exports.ringIndex = ringIndex;
/**
 * MurmurHash3, x86 32-bit variant (Austin Appleby, public domain), over the
 * UTF-8 bytes of `str`. The bytes are produced on the fly from the UTF-16 code
 * units (lone surrogates become U+FFFD, as `Buffer.from(str)` does), so hashing
 * a request key allocates nothing. Pure and process-independent: two Fulcrum
 * processes hash the same names and keys to the same values.
 */
function murmur3(str, seed = 0) {
    hState = seed | 0;
    kState = 0;
    shiftState = 0;
    const len = str.length;
    let bytes = 0;
    for (let i = 0; i < len; i++) {
        let c = str.charCodeAt(i);
        if (c < 0x80) {
            pushByte(c);
            bytes += 1;
            continue;
        }
        if (c < 0x800) {
            pushByte(0xc0 | (c >> 6));
            pushByte(0x80 | (c & 0x3f));
            bytes += 2;
            continue;
        }
        if (c >= 0xd800 && c <= 0xdfff) {
            const d = i + 1 < len ? str.charCodeAt(i + 1) : 0;
            if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
                c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
                i++;
                pushByte(0xf0 | (c >> 18));
                pushByte(0x80 | ((c >> 12) & 0x3f));
                pushByte(0x80 | ((c >> 6) & 0x3f));
                pushByte(0x80 | (c & 0x3f));
                bytes += 4;
                continue;
            }
            c = 0xfffd;
        }
        pushByte(0xe0 | (c >> 12));
        pushByte(0x80 | ((c >> 6) & 0x3f));
        pushByte(0x80 | (c & 0x3f));
        bytes += 3;
    }
    let h = hState;
    if (shiftState > 0)
        h ^= scramble(kState);
    h ^= bytes;
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
}
// Running state of `murmur3`, module-level so that feeding a byte needs no closure.
// Safe: the function is synchronous and does not recurse.
let hState = 0;
let kState = 0;
let shiftState = 0;
function pushByte(b) {
    kState |= b << shiftState;
    shiftState += 8;
    if (shiftState === 32) {
        let h = hState ^ scramble(kState);
        h = (h << 13) | (h >>> 19);
        hState = (Math.imul(h, 5) + 0xe6546b64) | 0;
        kState = 0;
        shiftState = 0;
    }
}
function scramble(k) {
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    return Math.imul(k, 0x1b873593);
}
/** Ring points per unit of weight (as Ketama's 160 per server). */
exports.VNODES_PER_WEIGHT = 160;
/** Cap on ring points: beyond it, points per unit of weight are scaled down for everyone. */
exports.MAX_RING_POINTS = 40_960;
/** Owner indices are packed below the 32-bit hash in a float64 for one numeric sort. */
const OWNER_SPACE = 2 ** 21;
/**
 * Build a hash ring. Backend `b` gets `max(1, round(weight * perWeight))` points
 * at `murmur3("<name length>:<name>#<replica>")`, where perWeight is
 * VNODES_PER_WEIGHT unless the total would pass MAX_RING_POINTS. The points
 * depend on a backend's own name and weight only (below the cap), so adding or
 * removing one backend only adds or removes its points: keys move to or away
 * from that backend and nowhere else. Two backends hashing to the same point
 * (about one chance in five on a full ring) are settled by name, not by input
 * order, so the ring does not depend on the order of the array.
 */
function buildRing(backends) {
    const n = backends.length;
    if (n >= OWNER_SPACE)
        throw new RangeError(`consistent-hash: too many backends (${n})`);
    let totalWeight = 0;
    for (const b of backends)
        totalWeight += b.weight;
    const perWeight = Math.min(exports.VNODES_PER_WEIGHT, exports.MAX_RING_POINTS / totalWeight);
    const counts = backends.map((b) => Math.max(1, Math.round(b.weight * perWeight)));
    let total = 0;
    for (const c of counts)
        total += c;
    const packed = new Float64Array(total);
    let p = 0;
    for (let owner = 0; owner < n; owner++) {
        const prefix = `${backends[owner].name.length}:${backends[owner].name}#`;
        for (let r = 0; r < counts[owner]; r++)
            packed[p++] = murmur3(prefix + r) * OWNER_SPACE + owner;
    }
    packed.sort();
    const points = new Uint32Array(total);
    const owners = new Uint32Array(total);
    let m = 0;
    for (let i = 0; i < total; i++) {
        const point = Math.floor(packed[i] / OWNER_SPACE);
        const owner = packed[i] - point * OWNER_SPACE;
        if (m > 0 && points[m - 1] === point) {
            if (backends[owner].name < backends[owners[m - 1]].name)
                owners[m - 1] = owner;
            continue;
        }
        points[m] = point;
        owners[m] = owner;
        m++;
    }
    return m === total ? { points, owners } : { points: points.slice(0, m), owners: owners.slice(0, m) };
}
/** Index of the first point at or clockwise after `hash` (wrapping to 0). O(log n). */
function ringIndex(points, hash) {
    let lo = 0;
    let hi = points.length;
    while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (points[mid] < hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo === points.length ? 0 : lo;
}
/**
 * Consistent hashing on a ring with virtual nodes (Karger et al.; Ketama).
 * The request's `ctx.hashKey` is hashed with the same murmur3 and owned by the
 * first ring point clockwise. Without a key, round robin over `available`.
 * With a subset (a retry excluding a tried backend), the walk continues clockwise
 * to the next backend in the subset, so the key's second choice is stable too.
 */
class ConsistentHash {
    #last;
    #names = [];
    #weights = [];
    #ring = { points: new Uint32Array(0), owners: new Uint32Array(0) };
    #next = 0;
    update(available) {
        const n = available.length;
        let same = n === this.#names.length;
        for (let i = 0; same && i < n; i++) {
            same = available[i].name === this.#names[i] && available[i].weight === this.#weights[i];
        }
        this.#last = available;
        if (same)
            return; // owner indices are still valid for this array
        this.#names = available.map((b) => b.name);
        this.#weights = available.map((b) => b.weight);
        this.#ring = buildRing(available);
    }
    pick(available, ctx) {
        const key = ctx.hashKey;
        if (key === undefined) {
            let i = this.#next;
            if (i >= available.length)
                i = 0;
            this.#next = i + 1;
            return available[i];
        }
        if (this.#last === undefined)
            this.update(available);
        const { points, owners } = this.#ring;
        const hash = murmur3(key);
        if (available === this.#last)
            return available[owners[ringIndex(points, hash)]];
        // Subset (rare path): walk clockwise to the first point owned by a member.
        const byName = new Map();
        for (const b of available)
            byName.set(b.name, b);
        const start = ringIndex(points, hash);
        for (let k = 0; k < points.length; k++) {
            let i = start + k;
            if (i >= points.length)
                i -= points.length;
            const b = byName.get(this.#names[owners[i]]);
            if (b !== undefined)
                return b;
        }
        // None of the subset is on the ring (not a subset of the last update): still deterministic.
        return available[hash % available.length];
    }
}
exports.ConsistentHash = ConsistentHash;
const createConsistentHash = () => new ConsistentHash();
exports.createConsistentHash = createConsistentHash;
//# sourceMappingURL=consistent-hash.js.map