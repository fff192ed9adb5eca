/** The text of src/dashboard/assets.generated.ts as the current assets make it. */
export declare const generated: () => string
