// sources: where instances come from besides the API. files.ts reads the services directory (JSON and YAML, every
// problem reported with file:line); the server applies what it declares through Discovery.syncServiceFiles.
// docker.ts follows a container engine (--docker-socket) and containers.ts reads each container's labels; the
// server applies them through Discovery.syncContainers.
export { DockerSource, type DockerSourceStatus } from "./docker.js";
export { instancesOfContainer, type ContainerInspect } from "./containers.js";
export { loadServiceFiles, ServiceFileError, type ServiceFileSet, type ServiceFileProblem } from "./files.js";
