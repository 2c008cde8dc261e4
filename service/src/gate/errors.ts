/** Bad gate input: the message names the file or model and what to change. */
export class GateInputError extends Error {
  override readonly name: string = "GateInputError";
}

/** An evaluation-set manifest or one of its files cannot be used. */
export class EvalSetError extends GateInputError {
  override readonly name = "EvalSetError";
}

/** Two models (or a model and an evaluation set) do not share a contract. */
export class ContractMismatchError extends GateInputError {
  override readonly name = "ContractMismatchError";
}

/** A model source (local folder or s3:// URI) cannot be resolved. */
export class ModelSourceError extends GateInputError {
  override readonly name = "ModelSourceError";
}
