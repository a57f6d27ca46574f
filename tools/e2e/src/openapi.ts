import { Ajv } from 'ajv';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;

/** Checks real answers against the OpenAPI document the app generates from its route schemas. */
export async function openApiChecker(baseUrl: string) {
  const doc = (await (await fetch(`${baseUrl}/docs/json`)).json()) as {
    paths: Record<
      string,
      Record<string, { responses: Record<string, { content?: Record<string, { schema: object }> }> }>
    >;
  };
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const find = (method: string, path: string) => {
    for (const [template, ops] of Object.entries(doc.paths)) {
      const re = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
      if (re.test(path) && ops[method.toLowerCase()]) return { template, op: ops[method.toLowerCase()]! };
    }
    return null;
  };
  return {
    doc,
    /** Throws unless the status is documented for the route and the body fits its schema. */
    check(method: string, url: string, status: number, body: unknown): void {
      const path = url.split('?')[0]!;
      const found = find(method, path);
      if (!found) throw new Error(`${method} ${path} is not in the OpenAPI document`);
      const response = found.op.responses[String(status)];
      if (!response) throw new Error(`${method} ${found.template} does not document status ${status}`);
      const schema = response.content && Object.values(response.content)[0]?.schema;
      if (!schema) return;
      const validate = ajv.compile(schema);
      if (!validate(body))
        throw new Error(
          `${method} ${found.template} ${status}: body does not match the document: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body)}`,
        );
    },
  };
}
