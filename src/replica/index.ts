/**
 * replica — assembles one running WaveKV peer: a WaveNode, the sync driver and the WebSocket
 * transport, and serves its status as JSON and Prometheus text, and (with a control token)
 * `POST /forget-peer/<id>`.
 *
 * Owns: wiring, the status report and the control routes. Must not touch: protocol rules, frames or the store's
 * files; each belongs to its own layer.
 */
export { isMember, Replica, type ReplicaOptions } from './replica.js';
export { metricsText, statusReport, type StatusReport, type PeerStatus } from './status.js';
