/**
 * The layers a pull has applied while their content is still being flushed (the Store's
 * importLayerFlushingBehind): each is marked complete, base first, as soon as it is on disk,
 * while the pull goes on with the next one, so that a pull killed part-way keeps what it
 * finished. The first failure stops the completions; the pull then fails.
 */
import type { LayerBeingFlushed } from "../store/layer-lifecycle.ts";

export class LayerCompletions {
  private readonly flushing: LayerBeingFlushed[] = [];
  private chain: Promise<void> = Promise.resolve();
  private failure: { error: unknown } | undefined;

  /** `completed` is told each layer marked complete, in order. */
  constructor(private readonly completed: (id: string) => void) {}

  /** Marks the layer complete once its flush has ended and the layers below it are complete. */
  add(layer: LayerBeingFlushed): void {
    this.flushing.push(layer);
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        await layer.complete();
        this.flushing.splice(this.flushing.indexOf(layer), 1);
        this.completed(layer.id);
      } catch (error) {
        this.failure = { error };
      }
    });
  }

  /** Throws what a completion failed with, if one has. */
  check(): void {
    if (this.failure) throw this.failure.error;
  }

  /** Waits until every layer added is complete; throws the first failure. */
  async finish(): Promise<void> {
    await this.chain;
    this.check();
  }

  /**
   * After a failure: once no completion is under way, removes the layers not complete, those on
   * top first (one that cannot be removed stays 'creating', and the next writer's recovery removes it).
   */
  async abandon(): Promise<void> {
    await this.chain;
    for (const layer of this.flushing.splice(0).reverse()) await layer.abandon().catch(() => {});
  }
}
