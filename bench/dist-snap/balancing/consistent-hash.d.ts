import type { BackendView, BalancingStrategy, PickContext, StrategyFactory } from './types';
/**
 * MurmurHash3, x86 32-bit variant (Austin Appleby, public domain), over the
 * UTF-8 bytes of `str`. The bytes are produced on the fly from the UTF-16 code
 * units (lone surrogates become U+FFFD, as `Buffer.from(str)` does), so hashing
 * a request key allocates nothing. Pure and process-independent: two Fulcrum
 * processes hash the same names and keys to the same values.
 */
export declare function murmur3(str: string, seed?: number): number;
/** Ring points per unit of weight (as Ketama's 160 per server). */
export declare const VNODES_PER_WEIGHT = 160;
/** Cap on ring points: beyond it, points per unit of weight are scaled down for everyone. */
export declare const MAX_RING_POINTS = 40960;
export interface HashRing {
    /** Sorted, distinct ring positions. */
    readonly points: Uint32Array;
    /** `owners[i]` is the index (in the input array) of the backend owning `points[i]`. */
    readonly owners: Uint32Array;
}
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
export declare function buildRing(backends: readonly Pick<BackendView, 'name' | 'weight'>[]): HashRing;
/** Index of the first point at or clockwise after `hash` (wrapping to 0). O(log n). */
export declare function ringIndex(points: Uint32Array, hash: number): number;
/**
 * Consistent hashing on a ring with virtual nodes (Karger et al.; Ketama).
 * The request's `ctx.hashKey` is hashed with the same murmur3 and owned by the
 * first ring point clockwise. Without a key, round robin over `available`.
 * With a subset (a retry excluding a tried backend), the walk continues clockwise
 * to the next backend in the subset, so the key's second choice is stable too.
 */
export declare class ConsistentHash<B extends BackendView = BackendView> implements BalancingStrategy<B> {
    #private;
    update(available: readonly B[]): void;
    pick(available: readonly B[], ctx: PickContext): B;
}
export declare const createConsistentHash: StrategyFactory;
