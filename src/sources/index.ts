// sources: where instances come from besides the API. files.ts reads the services directory (JSON and YAML, every
// problem reported with file:line); the server applies what it declares through Discovery.syncServiceFiles.
export { loadServiceFiles, ServiceFileError, type ServiceFileSet, type ServiceFileProblem } from "./files.js";
