// The record cutting rule, visible to the package's tests.
import VFIOCore

package enum PagePackerProbe {
    package static func records(_ runs: [DirtyRun], maxPages: Int, stripePages: Int?) -> [[DirtyRun]] {
        PagePacker.records(runs, maxPages: maxPages, stripePages: stripePages)
    }
}
