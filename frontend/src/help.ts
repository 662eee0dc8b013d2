/** Inline help texts shown by the "?" markers. Plain language: users are not engineers. */
export const HELP = {
  dataset:
    "A dataset is one training-data project: the people, feelings and topics to cover (taxonomy), your source text (chunks), the planned conversations and a spending budget.",
  tiers:
    "Every conversation belongs to one of three tiers. Template: follows a proven emotional arc (e.g. anxiety to relief). Scenario: based on a real customer situation from your documents. Edge case: unusual or difficult situations that teach the model its limits. A typical mix is 40 / 35 / 15.",
  quality:
    "An automatic score from 1 to 10. It combines structure checks (turns, length), checks for real defects (refusals, leaked placeholders, mixed-up roles, a switch of language, a cut-off ending, promises a regulated business must not make, your own rules) and, when enabled, an AI judge. Red is below 6 (flagged for a closer look, with the reasons), yellow is 6 to 8, green is above 8.",
  status:
    "Not generated: planned but not written yet. Generating: being written now. Generated: ready for your review. Approved / Rejected: your decision. Failed: writing failed; click the badge to see why and retry.",
  cost: "What it cost to write this conversation with Claude (or the estimate if it has not been written yet).",
  economy:
    "Economy mode sends the work as a batch: it costs about half as much but can take longer (up to several hours) to finish.",
  concurrency:
    "How many conversations are being written at the same time. It follows your Anthropic account's limits (requests and output tokens per minute) and how long each answer takes, and slows down by itself when the provider refuses calls. A maximum you set when starting is a cap on top of that.",
  splits:
    "Splitting puts 80% of conversations in a training file, 10% in a validation file (to check progress while training) and 10% in a test file (to measure the result afterwards).",
  budget:
    "The most you want to spend on writing conversations for this dataset, in US dollars. You are warned at 50%, 75% and 90%; at 100% generation pauses itself until you resume it.",
  targetCount: "How many conversations you want in this dataset in total.",
  taxonomy:
    "The lists of personas (who is talking), emotions, topics, intents (what they want) and tones (how the assistant should sound). Conversations are planned to cover their combinations.",
  chunks:
    "Passages of your own documents (from the earlier document-processing stage). Scenario conversations are based on them, so the model learns your real content.",
  plan: "Planning creates empty 'Not generated' conversations that cover your taxonomy in the tier mix you choose. Nothing is written or charged until you generate them.",
  coverage:
    "Shows how many conversations exist for each combination. Red (zero) cells are gaps: combinations your model would never see in training.",
  fillGaps: "Plans extra 'Not generated' conversations for the empty combinations. You still decide when to generate them.",
  weight:
    "How often this template is picked compared to the other active templates of the same tier. A weight of 2 is picked twice as often as a weight of 1.",
  templateActive: "Only active templates are used for new conversations. Deactivating keeps the template and its history.",
  templateVersion: "Saving new text creates a new version. Conversations remember which version wrote them.",
  approvalRate: "The share of reviewed conversations written with this template that were approved.",
  exportApproved: "Only approved conversations are exported. Approve conversations on the Dashboard first.",
  generateAll:
    "Writes every conversation of this dataset that has not been generated yet (or retries the failed ones). You see the cost and time estimate before anything starts.",
  keyboard: "Keyboard shortcuts work when you are not typing in a text box.",
  histogram:
    "How many conversations have each quality score. Red bars are below 6: those are flagged for a closer look. Click a bar to list its conversations; click it again to show all.",
  attention:
    "Sorts the table so flagged conversations come first, lowest score first, then the rest from the lowest score up: the quickest way to find what needs your eyes.",
  reasons:
    "Why the checks flagged this conversation, worst first. A reason that names a turn takes you to it; flagged turns are outlined in red.",
  diversity:
    "How varied the dataset is. Repeated openings and phrases, near-duplicate conversations and persona x topic combinations that all sound alike teach a model to repeat itself. 100 means nothing repeats. Distinct-2 is the share of word pairs that are unique (higher is more varied).",
  calibration:
    "Compares the quality score with your own approve and reject decisions: how often conversations in each score band were approved, how often a flag from each check ended in a rejection (its precision), and which flag line would agree best with you once 30 or more decisions exist.",
  judge:
    "An AI reviewer (a small Claude model) reads each generated conversation and scores five things from 1 to 10, with a reason for each. Its verdict is combined with the automatic checks into the quality score.",
  rules:
    "Your business's own rules, checked in every conversation: phrases the assistant must never use, disclaimers it must include (for all topics or only some) and brand names with the misspellings to catch. A conversation that breaks a rule is flagged with the reason.",
  judgeMode:
    "Automatic: the AI judge reviews every generated conversation (it costs a little; the estimate includes it). Off: only the automatic checks score conversations.",
};

/** The whole workflow in five steps, shown to newcomers on the welcome screen. */
export const GETTING_STARTED: { title: string; text: string }[] = [
  { title: "Set up a dataset", text: "Name your project and list who talks (personas), how they feel, what about, what they want and the tone to answer in." },
  { title: "Plan", text: "The studio plans conversations that cover every combination. Free: nothing is written yet." },
  { title: "Generate", text: "Claude writes the planned conversations. You see the cost and time first, and can pause at any moment." },
  { title: "Review", text: "Read each conversation and approve or reject it (keys a and r). Quality scores point you to the weak ones." },
  { title: "Export", text: "Download the approved conversations in the format your training tool expects." },
];
