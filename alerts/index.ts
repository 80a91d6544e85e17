/** The alerts component: the AlertDispatcher port's implementation and the sink validation. */
export {
  AlertDispatcher,
  AlertDeliveryError,
  type AlertDispatcherOptions,
  type DeliveryReport,
} from './dispatcher';
export { ALERT_DELIVERIES_COLLECTION } from './delivery-store';
export { ALERT_SINK_KINDS, validateAlertSinks, type AlertSinkConfig } from './sinks';
export { verifyWebhookSignature } from './webhook-sink';
