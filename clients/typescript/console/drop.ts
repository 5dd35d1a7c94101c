// What a drop on the upload area holds: files, and folders walked to the files inside them
// (FileSystemDirectoryEntry), each named by its path. A folder or file that cannot be read is kept
// as an entry with its error, so the upload list names it and the rest still goes up.

export type Dropped = { path: string; file: File } | { path: string; error: string };

const reason = (e: unknown) => (e instanceof Error ? e.message : e instanceof DOMException ? e.name : String(e));

/** Every file under `entry` (the entry itself when it is a file), depth first, in the browser's order. */
export async function walk(entry: FileSystemEntry, prefix = ""): Promise<Dropped[]> {
  const path = prefix + entry.name;
  if (entry.isFile) {
    try {
      return [{ path, file: await new Promise<File>((ok, fail) => (entry as FileSystemFileEntry).file(ok, fail)) }];
    } catch (e) {
      return [{ path, error: `cannot read the file: ${reason(e)}` }];
    }
  }
  const reader = (entry as FileSystemDirectoryEntry).createReader();
  const out: Dropped[] = [];
  for (;;) {
    // readEntries returns a folder's entries in batches (of 100 in Chromium) until an empty one.
    let batch: FileSystemEntry[];
    try {
      batch = await new Promise<FileSystemEntry[]>((ok, fail) => reader.readEntries(ok, fail));
    } catch (e) {
      return [...out, { path: `${path}/`, error: `cannot read the folder: ${reason(e)}` }];
    }
    if (!batch.length) return out;
    for (const child of batch) out.push(...(await walk(child, `${path}/`)));
  }
}

/** The files of a drop. Entries must be taken while the drop event is being handled (the browser
 * empties the DataTransfer afterwards); reading them may go on later. */
export function dropped(data: DataTransfer | null): Promise<Dropped[]> {
  const pending: Promise<Dropped[]>[] = [];
  for (const item of data?.items ?? []) {
    if (item.kind !== "file") continue; // dragged text or links
    const entry = item.webkitGetAsEntry();
    const file = item.getAsFile();
    if (entry) pending.push(walk(entry));
    else if (file) pending.push(Promise.resolve([{ path: file.name, file }]));
  }
  return Promise.all(pending).then((lists) => lists.flat());
}
