// Field templates like the nginx upload module's upload_set_form_field and upload_aggregate_form_field
// directives: `<name template>=<value template>`, comma-separated, with the module's variables. The
// default reproduces django-nginx-upload's configuration exactly:
//   upload_set_form_field $upload_field_name.name "$upload_file_name";
//   upload_set_form_field $upload_field_name.content_type "$upload_content_type";
//   upload_set_form_field $upload_field_name.path "$upload_tmp_path";
//   upload_aggregate_form_field "$upload_field_name.md5" "$upload_file_md5";
//   upload_aggregate_form_field "$upload_field_name.size" "$upload_file_size";
// The contract's own keys (<field>.id, .owner, and .sha1/.crc32 when DIGESTS asks) follow whatever
// the templates say, as on the tus path: the completion service needs them.

export const DEFAULT_FORM_FIELDS = [
  '$upload_field_name.name=$upload_file_name',
  '$upload_field_name.content_type=$upload_content_type',
  '$upload_field_name.path=$upload_tmp_path',
  '$upload_field_name.md5=$upload_file_md5',
  '$upload_field_name.size=$upload_file_size',
].join(',');

/** The module's variables tuspass fills in (docs/nginx-migration.md). */
export const VARIABLES = [
  'upload_field_name',
  'upload_file_name',
  'upload_content_type',
  'upload_tmp_path',
  'upload_file_md5',
  'upload_file_md5_uc',
  'upload_file_sha1',
  'upload_file_sha1_uc',
  'upload_file_crc32',
  'upload_file_size',
  'upload_file_number',
] as const;
export type Variable = (typeof VARIABLES)[number];

const VARIABLE = /\$(?:\{([a-z0-9_]+)\}|([a-z0-9_]+))/g;
const KEY = /^[A-Za-z0-9_.-]{1,128}$/;

export interface FormTemplates {
  readonly text: string;
  /** The form keys and values of one file. */
  apply(vars: Record<Variable, string>): Array<[string, string]>;
}

function checkVariables(template: string): void {
  for (const m of template.matchAll(VARIABLE)) {
    const name = m[1] ?? m[2]!;
    if (!(VARIABLES as readonly string[]).includes(name))
      throw new Error(`unknown variable $${name} (known: ${VARIABLES.map((v) => `$${v}`).join(' ')})`);
  }
}

/** Parses MULTIPART_FORM_FIELDS; throws with a message naming what is wrong. */
export function parseFormTemplates(text: string): FormTemplates {
  const pairs = text
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((item) => {
      const eq = item.indexOf('=');
      if (eq <= 0) throw new Error(`"${item}" is not <name>=<value>`);
      const [name, value] = [item.slice(0, eq).trim(), item.slice(eq + 1).trim()];
      checkVariables(name);
      checkVariables(value);
      return [name, value] as const;
    });
  if (pairs.length === 0) throw new Error('no field templates');
  const fill = (template: string, vars: Record<Variable, string>) =>
    template.replace(VARIABLE, (_m, a: string | undefined, b: string | undefined) => vars[(a ?? b) as Variable]);
  return {
    text,
    apply(vars) {
      const out: Array<[string, string]> = [];
      for (const [name, value] of pairs) {
        const key = fill(name, vars);
        // A key a variable made unusable (a file name in it, say) is left out rather than sent mangled.
        if (KEY.test(key)) out.push([key, fill(value, vars)]);
      }
      return out;
    },
  };
}
