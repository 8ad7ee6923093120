// Sends one of each call with @segment/analytics-node to HOST (argv[2]) with WRITE_KEY (argv[3]),
// then prints the messageIds it sent, one JSON line (read by tests/ingest/test_analytics_node.py).
import { Analytics } from '@segment/analytics-node'

const [host, writeKey] = process.argv.slice(2)
const analytics = new Analytics({ writeKey, host, flushAt: 6, flushInterval: 200, maxRetries: 5 })
const sent = []
const failed = []
// The callback runs once the call was delivered (or finally failed).
const done = (err, ctx) =>
  err ? failed.push(String(err.reason ?? err.code ?? err)) : sent.push([ctx.event.type, ctx.event.messageId])
analytics.on('error', (err) => failed.push(String(err.reason ?? err.code ?? err)))
const user = { userId: 'node-user' }
analytics.track({ ...user, event: 'Email Delivered', properties: { message_id: 'nm-1' } }, done)
analytics.identify({ ...user, traits: { email: 'node@example.com' } }, done)
analytics.page({ ...user, name: 'Pricing' }, done)
analytics.screen({ ...user, name: 'Settings' }, done)
analytics.group({ ...user, groupId: 'org-9' }, done)
analytics.alias({ ...user, previousId: 'anon-9' }, done)
await analytics.closeAndFlush({ timeout: 30000 })
console.log(JSON.stringify({ sent, failed }))
