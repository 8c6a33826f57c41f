// cluster: several nodes sharing one registry through etcd. cluster.ts publishes this node's instances on a lease
// and watches the others' into the replica; preservation.ts decides when mass expiry is an etcd outage, not a
// failure of the nodes; etcd.ts connects. Loaded only with --store etcd (etcd3 and grpc cost ~0.3 s at start).
export { EtcdCluster, type ClusterOptions, type ClusterState, type ClusterStatus } from "./cluster.js";
export type { SelfPreservationSettings } from "./preservation.js";
