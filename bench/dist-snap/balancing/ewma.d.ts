import type { BackendView, BalancingStrategy, StrategyFactory } from './types';
/**
 * Time-decayed exponentially weighted moving average of response times, as in
 * Finagle's and Linkerd's peak-EWMA balancers: the weight of the old average is
 * `exp(-elapsed / decay)`, so a backend that has been quiet for a while is
 * judged mostly on its next sample, and a burst of samples in quick succession
 * moves the average slowly. Pure; the pool calls it when a response arrives.
 *
 * @param prevMs    the current average; 0 means no sample yet
 * @param sampleMs  the response time just measured
 * @param elapsedMs time since the previous sample
 * @param decayMs   time constant of the decay
 */
export declare function updateEwma(prevMs: number, sampleMs: number, elapsedMs: number, decayMs?: number): number;
/**
 * Lowest `latencyEwmaMs * (inFlight + 1)`, divided by the weight when weights
 * differ. Backends without a sample yet have an average of 0, so they win until
 * their first response arrives: new backends get tried. Ties are broken in turn
 * (the scan starts after the previous winner). O(n), no allocation.
 */
export declare class Ewma<B extends BackendView = BackendView> implements BalancingStrategy<B> {
    #private;
    update(available: readonly B[]): void;
    pick(available: readonly B[]): B;
}
export declare const createEwma: StrategyFactory;
