// "team=finance, year>=2024, lang=en|de" into a mmsearch.v1.Filter (every condition must hold).
import type { MessageInitShape } from "@bufbuild/protobuf";

import type { FilterSchema } from "../src/gen/mmsearch/v1/common_pb.js";

type FilterInit = MessageInitShape<typeof FilterSchema>;
type Condition = NonNullable<FilterInit["must"]>[number];

function value(v: string) {
  if (/^-?\d+$/.test(v)) return { kind: { case: "intValue" as const, value: BigInt(v) } };
  if (v === "true" || v === "false") return { kind: { case: "boolValue" as const, value: v === "true" } };
  return { kind: { case: "stringValue" as const, value: v } };
}

export function parseFilter(text: string): FilterInit | undefined {
  const must: Condition[] = [];
  for (const part of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = part.match(/^([\w.-]+)\s*(>=|<=|>|<|=)\s*(.+)$/);
    if (!m) throw new Error(`cannot read filter "${part}": write key=value, key=a|b or key>=n`);
    const [, key, op, raw] = m;
    if (op === "=") {
      const values = raw.split("|").map((v) => value(v.trim()));
      must.push({ key, condition: values.length > 1 ? { case: "anyOf", value: { values } } : { case: "match", value: values[0] } });
    } else {
      const n = Number(raw);
      const name = ({ ">=": "gte", "<=": "lte", ">": "gt", "<": "lt" } as const)[op as ">=" | "<=" | ">" | "<"];
      must.push({ key, condition: { case: "range", value: { [name]: n } } });
    }
  }
  return must.length ? { must } : undefined;
}
