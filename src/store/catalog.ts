/**
 * The SQL side of the store: rows to records and back. No filesystem work happens here; the
 * Store combines these calls with the driver inside its own transactions.
 */
import type { Database, Statement } from "bun:sqlite";
import type { AppliedValues, BigDataInfo, ContainerRecord, ImageRecord, ImageSummary, LayerRecord, LayerSummary, ListingLines, ObjectKind } from "./records.ts";

type Row = Record<string, any>;
/** A row read with Statement.values(): columns by position (cheaper to build than an object per row). */
type Values = any[];

const TABLE: Record<ObjectKind, string> = { layer: "layers", image: "images", container: "containers" };

/** The columns a record is made of, in the order the *FromValues decoders read them. */
const LAYER_COLUMNS =
  "id, parent, metadata, mount_label, created_ns, compressed_digest, compressed_size, diff_digest, diff_size, compression, uidset, gidset, flags, uidmap, gidmap, read_only, has_layout";
const IMAGE_COLUMNS = "id, digest, names_history, top_layer, mapped_layers, metadata, created_ns, flags";
const CONTAINER_COLUMNS = "id, image, layer, metadata, created_ns, uidmap, gidmap, flags";

/** Parses a JSON column, answering the empty array and object that most rows hold without the parser. */
function parseJson<T>(text: string): T {
  if (text === "[]") return [] as T;
  if (text === "{}") return {} as T;
  return JSON.parse(text) as T;
}


/** Prepared-statement access to the store's tables. */
export class Catalog {
  /** Prepared statements by their SQL (an object rather than a Map: one kind of object fewer at start, docs/benchmarks.md). */
  private statements: Record<string, Statement> = {};

  constructor(readonly db: Database) {}

  /** A cached prepared statement. */
  private q(sql: string): Statement {
    return (this.statements[sql] ??= this.db.prepare(sql));
  }

  /** Finalizes the prepared statements, so that closing the database really closes its files. */
  finalize(): void {
    for (const statement of Object.values(this.statements)) statement.finalize();
    this.statements = {};
  }

  // ---- store-wide facts -------------------------------------------------------------

  getInfo(key: string): string | undefined {
    return (this.q("SELECT value FROM store_info WHERE key = ?").get(key) as Row | null)?.value;
  }

  setInfo(key: string, value: string): void {
    this.q("INSERT INTO store_info (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value").run(key, value);
  }

  // ---- lookups shared by all kinds ----------------------------------------------------

  /** Resolves a reference within one kind: exact ID, exact name, then unique ID prefix (docs/cli-contract.md §2.4). */
  resolve(kind: ObjectKind, ref: string, options: { byLayer?: boolean } = {}): string | undefined {
    const table = TABLE[kind];
    const visible = kind === "layer" ? " AND state = 'complete'" : "";
    if (this.q(`SELECT 1 FROM ${table} WHERE id = ?${visible}`).get(ref)) return ref;
    const named = this.q(
      kind === "layer"
        ? "SELECT n.owner FROM names n JOIN layers l ON l.id = n.owner WHERE n.kind = 'layer' AND n.name = ? AND l.state = 'complete'"
        : "SELECT owner FROM names WHERE kind = ? AND name = ?",
    );
    const byName = (kind === "layer" ? named.get(ref) : named.get(kind, ref)) as Row | null;
    if (byName) return byName.owner;
    if (options.byLayer) {
      const row = this.q("SELECT id FROM containers WHERE layer = ?").get(ref) as Row | null;
      if (row) return row.id;
    }
    if (ref === "") return undefined;
    // The IDs that sort right after the prefix: at most two share it when it is unique.
    const rows = this.q(`SELECT id FROM ${table} WHERE id >= ?${visible} ORDER BY id LIMIT 2`).all(ref) as Row[];
    const matches = rows.filter((r) => (r.id as string).startsWith(ref));
    return matches.length === 1 ? matches[0]!.id : undefined;
  }

  namesOf(kind: ObjectKind, owner: string): string[] {
    return (this.q("SELECT name FROM names WHERE kind = ? AND owner = ? ORDER BY position").all(kind, owner) as Row[]).map((r) => r.name);
  }

  /** All names of a kind, grouped by owner, for listings. */
  allNames(kind: ObjectKind): Map<string, string[]> {
    const result = new Map<string, string[]>();
    for (const [owner, name] of this.q("SELECT owner, name FROM names WHERE kind = ? ORDER BY owner, position").values(kind) as Array<[string, string]>) {
      let list = result.get(owner);
      if (!list) result.set(owner, (list = []));
      list.push(name);
    }
    return result;
  }

  /** The owner of a name within a kind. */
  nameOwner(kind: ObjectKind, name: string): string | undefined {
    return (this.q("SELECT owner FROM names WHERE kind = ? AND name = ?").get(kind, name) as Row | null)?.owner;
  }

  /** Replaces an object's names, taking each from whichever other object of the kind held it. */
  setNames(kind: ObjectKind, owner: string, names: string[]): void {
    this.q("DELETE FROM names WHERE kind = ? AND owner = ?").run(kind, owner);
    const insert = this.q(
      "INSERT INTO names (kind, name, owner, position) VALUES (?, ?, ?, ?) ON CONFLICT(kind, name) DO UPDATE SET owner = excluded.owner, position = excluded.position",
    );
    names.forEach((name, i) => insert.run(kind, name, owner, i));
  }

  getMetadata(kind: ObjectKind, id: string): string {
    return (this.q(`SELECT metadata FROM ${TABLE[kind]} WHERE id = ?`).get(id) as Row).metadata;
  }

  setMetadata(kind: ObjectKind, id: string, metadata: string): void {
    this.q(`UPDATE ${TABLE[kind]} SET metadata = ? WHERE id = ?`).run(metadata, id);
  }

  setFlags(kind: ObjectKind, id: string, flags: Record<string, unknown>): void {
    this.q(`UPDATE ${TABLE[kind]} SET flags = ? WHERE id = ?`).run(JSON.stringify(flags), id);
  }

  // ---- big data -------------------------------------------------------------------------

  bigDataOf(kind: ObjectKind, owner: string): BigDataInfo[] {
    return this.q("SELECT name, size, digest FROM big_data WHERE kind = ? AND owner = ? ORDER BY seq").all(kind, owner) as BigDataInfo[];
  }

  allBigData(kind: ObjectKind): Map<string, BigDataInfo[]> {
    const result = new Map<string, BigDataInfo[]>();
    for (const r of this.q("SELECT owner, name, size, digest FROM big_data WHERE kind = ? ORDER BY owner, seq").all(kind) as Row[]) {
      let list = result.get(r.owner);
      if (!list) result.set(r.owner, (list = []));
      list.push({ name: r.name, size: r.size, digest: r.digest });
    }
    return result;
  }

  getBigData(kind: ObjectKind, owner: string, name: string): Uint8Array | undefined {
    const row = this.q("SELECT data FROM big_data WHERE kind = ? AND owner = ? AND name = ?").get(kind, owner, name) as Row | null;
    return row ? (row.data as Uint8Array) : undefined;
  }

  /** Stores an item; a replaced item keeps its place in the creation order. */
  setBigData(kind: ObjectKind, owner: string, name: string, data: Uint8Array, digest: string): void {
    const seq = (this.q("SELECT COALESCE(MAX(seq), 0) + 1 AS next FROM big_data WHERE kind = ? AND owner = ?").get(kind, owner) as Row).next;
    this.q(
      `INSERT INTO big_data (kind, owner, name, seq, size, digest, data) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT(kind, owner, name) DO UPDATE SET size = excluded.size, digest = excluded.digest, data = excluded.data`,
    ).run(kind, owner, name, seq, data.byteLength, digest, data);
  }

  /** Removes an object's row, names and data items. */
  deleteObject(kind: ObjectKind, id: string): void {
    this.q("DELETE FROM names WHERE kind = ? AND owner = ?").run(kind, id);
    this.q("DELETE FROM big_data WHERE kind = ? AND owner = ?").run(kind, id);
    if (kind === "layer") this.q("DELETE FROM layer_layout WHERE layer = ?").run(id);
    this.q(`DELETE FROM ${TABLE[kind]} WHERE id = ?`).run(id);
  }

  // ---- layers ---------------------------------------------------------------------------

  private layerFromValues(v: Values, names: string[], bigData: BigDataInfo[]): LayerRecord {
    return {
      id: v[0],
      names,
      parent: v[1] ?? "",
      metadata: v[2],
      mountLabel: v[3],
      createdNs: BigInt(v[4]),
      compressedDigest: v[5],
      compressedSize: v[6],
      diffDigest: v[7],
      diffSize: v[8],
      compression: v[9],
      uidset: parseJson(v[10]),
      gidset: parseJson(v[11]),
      flags: parseJson(v[12]),
      uidMap: parseJson(v[13]),
      gidMap: parseJson(v[14]),
      bigDataNames: bigData.map((b) => b.name),
      readOnly: v[15] === 1,
      hasLayout: v[16] === 1,
    };
  }

  /** A complete layer, or with anyState a layer row in any state. */
  getLayer(id: string, anyState = false): LayerRecord | undefined {
    const v = this.q(`SELECT ${LAYER_COLUMNS} FROM layers WHERE id = ?${anyState ? "" : " AND state = 'complete'"}`).values(id)[0] as Values | undefined;
    return v ? this.layerFromValues(v, this.namesOf("layer", id), this.bigDataOf("layer", id)) : undefined;
  }

  /** Complete layers in creation order. */
  listLayers(): LayerRecord[] {
    const names = this.allNames("layer");
    const data = this.allBigData("layer");
    return this.q(`SELECT ${LAYER_COLUMNS} FROM layers WHERE state = 'complete' ORDER BY seq`)
      .values()
      .map((v: Values) => this.layerFromValues(v, names.get(v[0]) ?? [], data.get(v[0]) ?? []));
  }

  /** IDs and names of complete layers in creation order: a tenth of the cost of whole records. */
  listLayerSummaries(): LayerSummary[] {
    const names = this.allNames("layer");
    return this.q("SELECT id FROM layers WHERE state = 'complete' ORDER BY seq")
      .values()
      .map((v: Values) => ({ id: v[0], names: names.get(v[0]) ?? [] }));
  }

  /** Inserts a layer in state 'creating', owned by the given process token. */
  insertLayer(layer: LayerRecord, owner: string): void {
    this.q(
      `INSERT INTO layers (id, parent, metadata, mount_label, created_ns, uidmap, gidmap, flags, read_only, state, owner)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'creating', ?)`,
    ).run(
      layer.id,
      layer.parent || null,
      layer.metadata,
      layer.mountLabel,
      layer.createdNs,
      JSON.stringify(layer.uidMap),
      JSON.stringify(layer.gidMap),
      JSON.stringify(layer.flags),
      layer.readOnly ? 1 : 0,
      owner,
    );
    this.setNames("layer", layer.id, layer.names);
  }

  /** The state of a layer's row and the token of the process working on it ("" once complete); undefined when there is no row. */
  layerProgress(id: string): { state: "creating" | "complete" | "deleting"; owner: string } | undefined {
    return (this.q("SELECT state, owner FROM layers WHERE id = ?").get(id) as { state: "creating" | "complete" | "deleting"; owner: string } | null) ?? undefined;
  }

  /** True when a row with this layer ID exists in any state. */
  layerRowExists(id: string): boolean {
    return this.layerProgress(id) !== undefined;
  }

  setLayerState(id: string, state: "creating" | "complete" | "deleting", owner: string): void {
    this.q("UPDATE layers SET state = ?, owner = ? WHERE id = ?").run(state, owner, id);
  }

  /** Layers left 'creating' or 'deleting', with the token of the process that was working on them and what recovery does. */
  unfinishedLayers(): Array<{ id: string; state: string; owner: string; onInterrupt: "remove" | "reset" }> {
    return this.q("SELECT id, state, owner, on_interrupt AS onInterrupt FROM layers WHERE state <> 'complete' ORDER BY seq DESC").all() as Array<{
      id: string;
      state: string;
      owner: string;
      onInterrupt: "remove" | "reset";
    }>;
  }

  /** Says what recovery does if the layer's writer dies while it is 'creating': remove it, or reset it to empty. */
  setLayerOnInterrupt(id: string, action: "remove" | "reset"): void {
    this.q("UPDATE layers SET on_interrupt = ? WHERE id = ?").run(action, id);
  }

  /** True when any layer row is not complete: one lookup in the layers_unfinished index. */
  hasUnfinishedLayers(): boolean {
    return this.q("SELECT 1 FROM layers WHERE state <> 'complete' LIMIT 1").get() !== null;
  }

  /** Every layer row in any state, oldest first, for consistency checks. */
  layerRows(): Array<{ id: string; parent: string; state: string; owner: string }> {
    return this.q("SELECT id, COALESCE(parent, '') AS parent, state, owner FROM layers ORDER BY seq").all() as Array<{ id: string; parent: string; state: string; owner: string }>;
  }

  /** Records the values of a freshly applied tar and drops the layout of any earlier one. */
  recordApplied(id: string, values: AppliedValues): void {
    this.q(
      `UPDATE layers SET compressed_digest = ?, compressed_size = ?, diff_digest = ?, diff_size = ?, compression = ?,
       uidset = ?, gidset = ?, has_layout = ? WHERE id = ?`,
    ).run(
      values.compressedDigest,
      values.compressedSize,
      values.diffDigest,
      values.diffSize,
      values.compression,
      JSON.stringify(values.uidset),
      JSON.stringify(values.gidset),
      values.hasLayout ? 1 : 0,
      id,
    );
  }

  /** Children of a layer (complete ones). */
  childLayers(id: string): string[] {
    return (this.q("SELECT id FROM layers WHERE parent = ? AND state = 'complete' ORDER BY seq").all(id) as Row[]).map((r) => r.id);
  }

  /** Children of a layer in any state: one being made on it (by another process) uses it too. */
  childLayerRows(id: string): string[] {
    return (this.q("SELECT id FROM layers WHERE parent = ? ORDER BY seq").all(id) as Row[]).map((r) => r.id);
  }

  // ---- layer layouts (byte-exact re-export data) ---------------------------------------

  clearLayout(layer: string): void {
    this.q("DELETE FROM layer_layout WHERE layer = ?").run(layer);
  }

  addLayoutChunk(layer: string, seq: number, chunk: Uint8Array): void {
    this.q("INSERT INTO layer_layout (layer, seq, chunk) VALUES (?, ?, ?)").run(layer, seq, chunk);
  }

  /** Streams a layer's layout chunks in order, one row at a time. */
  *layoutChunks(layer: string): Generator<Uint8Array> {
    let seq = -1;
    for (;;) {
      const row = this.q("SELECT seq, chunk FROM layer_layout WHERE layer = ? AND seq > ? ORDER BY seq LIMIT 1").get(layer, seq) as Row | null;
      if (!row) return;
      seq = row.seq;
      yield row.chunk as Uint8Array;
    }
  }

  // ---- images ---------------------------------------------------------------------------

  private imageFromValues(v: Values, names: string[], bigData: BigDataInfo[]): ImageRecord {
    return {
      id: v[0],
      digest: v[1],
      names,
      namesHistory: parseJson(v[2]),
      topLayer: v[3],
      mappedLayers: parseJson(v[4]),
      metadata: v[5],
      bigData,
      createdNs: BigInt(v[6]),
      flags: parseJson(v[7]),
    };
  }

  getImage(id: string): ImageRecord | undefined {
    const v = this.q(`SELECT ${IMAGE_COLUMNS} FROM images WHERE id = ?`).values(id)[0] as Values | undefined;
    return v ? this.imageFromValues(v, this.namesOf("image", id), this.bigDataOf("image", id)) : undefined;
  }

  listImages(): ImageRecord[] {
    const names = this.allNames("image");
    const data = this.allBigData("image");
    return this.q(`SELECT ${IMAGE_COLUMNS} FROM images ORDER BY seq`)
      .values()
      .map((v: Values) => this.imageFromValues(v, names.get(v[0]) ?? [], data.get(v[0]) ?? []));
  }

  /** IDs, names and layers of images in creation order. */
  listImageSummaries(): ImageSummary[] {
    const names = this.allNames("image");
    return this.q("SELECT id, top_layer, mapped_layers FROM images ORDER BY seq")
      .values()
      .map((v: Values) => ({ id: v[0], names: names.get(v[0]) ?? [], topLayer: v[1], mappedLayers: parseJson(v[2]) }));
  }

  insertImage(image: ImageRecord): void {
    this.q("INSERT INTO images (id, digest, top_layer, metadata, created_ns, flags) VALUES (?, ?, ?, ?, ?, ?)").run(
      image.id,
      image.digest,
      image.topLayer,
      image.metadata,
      image.createdNs,
      JSON.stringify(image.flags),
    );
    this.setNames("image", image.id, image.names);
  }

  imageExists(id: string): boolean {
    return this.q("SELECT 1 FROM images WHERE id = ?").get(id) !== null;
  }

  setImageDigest(id: string, digest: string): void {
    this.q("UPDATE images SET digest = ? WHERE id = ?").run(digest, id);
  }

  setNamesHistory(id: string, history: string[]): void {
    this.q("UPDATE images SET names_history = ? WHERE id = ?").run(JSON.stringify(history), id);
  }

  setMappedLayers(id: string, layers: string[]): void {
    this.q("UPDATE images SET mapped_layers = ? WHERE id = ?").run(JSON.stringify(layers), id);
  }

  /** Images whose top layer or mapped top layers include the layer. */
  imagesUsingLayer(layer: string): string[] {
    return (
      this.q("SELECT id FROM images WHERE top_layer = ? OR EXISTS (SELECT 1 FROM json_each(mapped_layers) WHERE value = ?) ORDER BY seq").all(layer, layer) as Row[]
    ).map((r) => r.id);
  }

  // ---- containers ---------------------------------------------------------------------

  private containerFromValues(v: Values, names: string[], bigData: BigDataInfo[]): ContainerRecord {
    return {
      id: v[0],
      names,
      image: v[1],
      layer: v[2],
      metadata: v[3],
      bigData,
      createdNs: BigInt(v[4]),
      uidMap: parseJson(v[5]),
      gidMap: parseJson(v[6]),
      flags: parseJson(v[7]),
    };
  }

  getContainer(id: string): ContainerRecord | undefined {
    const v = this.q(`SELECT ${CONTAINER_COLUMNS} FROM containers WHERE id = ?`).values(id)[0] as Values | undefined;
    return v ? this.containerFromValues(v, this.namesOf("container", id), this.bigDataOf("container", id)) : undefined;
  }

  listContainers(): ContainerRecord[] {
    const names = this.allNames("container");
    const data = this.allBigData("container");
    return this.q(`SELECT ${CONTAINER_COLUMNS} FROM containers ORDER BY seq`)
      .values()
      .map((v: Values) => this.containerFromValues(v, names.get(v[0]) ?? [], data.get(v[0]) ?? []));
  }

  insertContainer(c: ContainerRecord): void {
    this.q("INSERT INTO containers (id, image, layer, metadata, created_ns, uidmap, gidmap, flags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)").run(
      c.id,
      c.image,
      c.layer,
      c.metadata,
      c.createdNs,
      JSON.stringify(c.uidMap),
      JSON.stringify(c.gidMap),
      JSON.stringify(c.flags),
    );
    this.setNames("container", c.id, c.names);
  }

  containerExists(id: string): boolean {
    return this.q("SELECT 1 FROM containers WHERE id = ?").get(id) !== null;
  }

  /** The container whose own layer is this layer, if any. */
  containerOfLayer(layer: string): string | undefined {
    return (this.q("SELECT id FROM containers WHERE layer = ?").get(layer) as Row | null)?.id;
  }

  containersUsingImage(image: string): string[] {
    return (this.q("SELECT id FROM containers WHERE image = ? ORDER BY seq").all(image) as Row[]).map((r) => r.id);
  }

  // ---- listings as text ---------------------------------------------------------------

  /**
   * The text listing of this catalog's images or containers, made by SQLite in one statement:
   * per object in creation order its ID line, then its lines as `lines` says (an image's
   * digests as imageDigests in images.ts gives them: its own, then each distinct manifest* data
   * item's). 300 images cost a third of reading them as records and formatting them in
   * JavaScript, which runs such short loops in its interpreter. Names come in position order
   * from the names_owner index, as an ORDER BY in their group_concat would sort them again.
   */
  listingText(kind: "image" | "container", lines: ListingLines): string {
    const values: string[] = [];
    /** prefix || value || newline for each row `from` gives, in its order or in `order`. */
    const each = (prefix: string, value: string, from: string, order = "") => {
      values.push(prefix);
      return `COALESCE((SELECT group_concat(? || ${value} || char(10), ''${order && ` ORDER BY ${order}`}) FROM ${from}), '')`;
    };
    const own = `kind = '${kind}' AND owner = o.id`;
    const parts = ["o.id || char(10)"];
    if (lines.name !== undefined) parts.push(each(lines.name, "name", `names WHERE ${own}`));
    // Most objects have no data items: one probe of big_data decides whether to look further.
    const withData: string[] = [];
    if (kind === "image" && lines.digest !== undefined) {
      values.push(lines.digest);
      parts.push("CASE WHEN o.digest <> '' THEN ? || o.digest || char(10) ELSE '' END");
      const firstOfItsDigest = "NOT EXISTS (SELECT 1 FROM big_data e WHERE e.kind = 'image' AND e.owner = o.id AND e.name GLOB 'manifest*' AND e.digest = b.digest AND e.seq < b.seq)";
      withData.push(each(lines.digest, "b.digest", `big_data b WHERE b.kind = 'image' AND b.owner = o.id AND b.name GLOB 'manifest*' AND b.digest <> o.digest AND ${firstOfItsDigest}`, "b.seq"));
    }
    if (lines.data !== undefined) withData.push(each(lines.data, "name", `big_data WHERE ${own}`, "seq"));
    if (withData.length > 0) parts.push(`CASE WHEN EXISTS (SELECT 1 FROM big_data WHERE ${own}) THEN ${withData.join(" || ")} ELSE '' END`);
    const sql = `SELECT group_concat(${parts.join(" || ")}, '') FROM (SELECT * FROM ${TABLE[kind]} ORDER BY seq) o`;
    return ((this.q(sql).values(...values)[0] as Values)[0] as string | null) ?? "";
  }
}
