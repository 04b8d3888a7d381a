"""Insights responses: every field is described, since the OpenAPI page is the manual."""

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from app.figures import WindowRead
from app.insights.stats import WeakSpotReason
from app.scales import ScaleName


class Granularity(StrEnum):
    day = "day"
    week = "week"
    month = "month"


class ReportTable(StrEnum):
    breakdown = "breakdown"
    series = "series"


class Schema(BaseModel):
    model_config = ConfigDict(frozen=True)


class IntervalRead(Schema):
    lower: float = Field(description="Lower bound.")
    upper: float = Field(description="Upper bound.")


class EstimateRead(Schema):
    value: float = Field(description="The figure in its native unit.")
    lower: float = Field(description="Lower bound of its 95% interval.")
    upper: float = Field(description="Upper bound of its 95% interval.")
    responses: int = Field(description="Answers on the scale the figure is computed from.")


class CesRead(Schema):
    mean: float = Field(description="Mean ces7 answer (1 = very hard, 7 = very easy).")
    responses: int = Field(description="ces7 answers.")


class NativeFigures(Schema):
    csat: EstimateRead | None = Field(
        description="CSAT top-2-box: share of csat5 answers 4-5, Wilson 95% interval; "
        "null without csat5 answers."
    )
    nps: EstimateRead | None = Field(
        description="Net Promoter Score (-100..100) of nps11 answers, adjusted-Wald 95% "
        "interval; null without nps11 answers."
    )
    ces: CesRead | None = Field(description="Customer Effort Score; null without ces7 answers.")


class FamilyBaseline(Schema):
    family: str = Field(
        description="Scale family: satisfaction (csat5, smiley4, thumbs), nps, effort (ces7)."
    )
    baseline: float = Field(description="mu: pooled negative rate of the family in the window.")
    prior_strength: float = Field(
        description="kappa: Beta prior strength by the method of "
        "moments, clamped to [5, 200]; 20 with fewer than 8 moments."
    )
    responses: int = Field(description="N: rated responses of the family in the window.")
    moments: int = Field(description="J: moments with responses on the family.")


class TestsRead(Schema):
    trend: str = Field(
        description="Test of a rise against the previous window: `fisher-exact-one-sided`, "
        "the conditional exact test of two binomials (given both windows' negatives, the "
        "current window's are hypergeometric), Benjamini-Hochberg across moments."
    )
    consistency: str = Field(
        description="Test that a moment's teams share one negative rate: "
        "`pearson-chi-square` with its p-value from the chi-square distribution where every "
        "expected count is at least `chi_square_min_expected`, else from a Monte Carlo test "
        "conditional on the margins; Benjamini-Hochberg across moments."
    )
    chi_square_min_expected: float = Field(
        description="Smallest expected count (negative or not, any team) for the chi-square "
        "distribution to be used."
    )
    monte_carlo_draws: int = Field(
        description="Random tables with the observed margins drawn for the Monte Carlo test."
    )
    monte_carlo_seed: int = Field(
        description="Seed of those draws: the same counts always give the same p-value."
    )
    teams: str = Field(
        description="How teams are named: `fisher-exact-two-sided-vs-others-holm`, each team "
        "against the other teams pooled, Holm-adjusted across the moment's teams."
    )
    team_alpha: float = Field(
        description="Holm-adjusted p-value at or under which a team is named worse or better."
    )


class MethodRead(Schema):
    name: str = Field(description="The ranking method.")
    description: str = Field(description="How the figures are computed, in one paragraph.")
    credible_level: float = Field(description="Level of the credible interval of adjusted rates.")
    q_threshold: float = Field(
        description="q-value at or under which a moment is a confident "
        "problem, is worsening, or has inconsistent teams."
    )
    low_data_responses: int = Field(description="Moments with fewer responses are `low_data`.")
    trend_min_responses: int = Field(
        description="Responses needed in both windows to test a trend."
    )
    team_min_responses: int = Field(
        description="Responses a team needs to enter the consistency test."
    )
    tests: TestsRead = Field(description="The tests of trend and of consistency across teams.")
    baselines: list[FamilyBaseline] = Field(
        description="Baseline and prior strength per scale family in the window."
    )
    previous_baselines: list[FamilyBaseline] = Field(
        description="The same for the previous window."
    )


class TrendRead(Schema):
    previous_responses: int = Field(description="Responses in the previous window.")
    previous_negatives: int = Field(description="Negative responses in the previous window.")
    previous_adjusted_negative_rate: float | None = Field(
        description="Adjusted negative rate in the previous window; null without touchpoints."
    )
    change: float | None = Field(
        description="Adjusted rate now minus adjusted rate in the previous window."
    )
    tested: bool = Field(description="Both windows had enough responses to be tested.")
    z: float | None = Field(
        description="Pooled two-proportion z of the raw rates: descriptive only, the test is "
        "the exact one of `p_value`."
    )
    p_value: float | None = Field(
        description="One-sided p-value of the rise by the conditional exact test (one-sided "
        "Fisher): the chance that the current window holds at least this many of both "
        "windows' negatives if the two windows shared one rate."
    )
    q_value: float | None = Field(description="Benjamini-Hochberg q-value across moments tested.")
    worsening: bool = Field(description="The raw negative rate rose significantly (q <= 0.10).")


class TeamOutlierRead(Schema):
    team: str = Field(description="Team whose rate differs from the other teams'.")
    direction: str = Field(description="`worse` or `better` than the other teams pooled.")
    responses: int = Field(description="Rated responses of the team.")
    negatives: int = Field(description="Negative responses of the team.")
    negative_rate: float = Field(description="The team's raw negative rate.")
    others_responses: int = Field(description="Rated responses of the other tested teams.")
    others_negatives: int = Field(description="Negative responses of the other tested teams.")
    others_negative_rate: float = Field(description="The other tested teams' pooled rate.")
    p_value: float = Field(
        description="Two-sided exact (Fisher) p-value of the team against the others pooled."
    )
    adjusted_p_value: float = Field(
        description="Holm-adjusted across the moment's tested teams; named when <= 0.05."
    )


class ConsistencyRead(Schema):
    teams: int = Field(description="Teams with at least 10 responses, the ones tested.")
    chi_square: float = Field(description="Pearson chi-square statistic of homogeneity.")
    df: int = Field(description="Degrees of freedom (teams - 1).")
    phi: float = Field(
        description="Dispersion chi_square / df; about 1 when teams are alike. Descriptive."
    )
    min_expected: float = Field(
        description="Smallest expected count (negative or not) of any team under one shared "
        "rate; under 5, the p-value comes from Monte Carlo."
    )
    test: str = Field(
        description="Where `p_value` comes from: `chi-square` (the distribution) or "
        "`monte-carlo` (random tables with the observed margins, seeded)."
    )
    p_value: float = Field(description="p-value of the test that the teams share one rate.")
    q_value: float | None = Field(description="Benjamini-Hochberg q-value across moments tested.")
    inconsistent_teams: bool = Field(description="Teams differ significantly (q <= 0.10).")
    outliers: list[TeamOutlierRead] = Field(
        description="Teams that differ from the other teams pooled (Holm-adjusted exact "
        "test, p <= 0.05), most significant first."
    )


class FactorLabelText(Schema):
    en: str = Field(description="The label in English.")
    ru: str = Field(description="The label in Russian.")


class FactorShareRead(Schema):
    key: str = Field(description="The factor's key.")
    label: FactorLabelText = Field(description="What the client reads.")
    picked: int = Field(description="Answers of the sentiment that picked the factor.")
    share: float | None = Field(
        description="Raw share: picked / the moment's answers of the sentiment; null without "
        "answers."
    )
    share_of_said_why: float | None = Field(
        description="picked / the answers of the sentiment that picked any factor: the share "
        "among clients who said why; null when none did."
    )
    adjusted_share: float = Field(
        description="Posterior mean of the share, shrunk towards `prior_share` (empirical "
        "Bayes beta-binomial, as the ranking)."
    )
    interval: IntervalRead = Field(description="90% credible interval of the adjusted share.")
    prior_share: float = Field(
        description="The factor's share over every moment offering it, among their answers of "
        "the sentiment: where small samples are shrunk to."
    )
    prior_strength: float = Field(
        description="kappa of the factor's prior, by the moments' spread."
    )


class TopFactorRead(Schema):
    key: str = Field(description="The factor's key.")
    label: FactorLabelText = Field(description="What the client reads.")
    picked: int = Field(description="Negative answers that picked it.")
    adjusted_share: float = Field(
        description="Share of the negative answers picking it, shrunk like the ranking."
    )
    interval: IntervalRead = Field(description="90% credible interval of the adjusted share.")


class LostTimeRead(Schema):
    responses: int = Field(description="Answers that said how many minutes they lost.")
    mean_minutes: float = Field(description="Mean minutes lost per answer that said so.")
    mean_interval: IntervalRead | None = Field(
        description="95% Student t interval of the mean (lower bound at least 0); null with a "
        "single answer."
    )
    median_minutes: float = Field(description="Median minutes lost.")
    median_interval: IntervalRead = Field(
        description="Distribution-free interval of the median between two order statistics, "
        "at least 95% from six answers on (the whole range below)."
    )
    hours_lost: float = Field(
        description="touchpoints x mean minutes / 60: the hours all the moment's clients in "
        "the window lost, if those who said are typical."
    )


class WeakSpotOrder(StrEnum):
    priority = "priority"
    hours_lost = "hours_lost"


class WeakSpot(Schema):
    rank: int = Field(
        description="Position in the order asked for among all moments ranked (1 = first): "
        "by priority, or by hours lost."
    )
    moment: str = Field(description="Moment key.")
    name: str = Field(description="Moment name.")
    stage: str | None = Field(description="Journey stage of the moment.")
    owner_team: str | None = Field(description="Team owning the moment.")
    touchpoints: int = Field(description="V: touchpoints in the window, rated or not.")
    responses: int = Field(description="n: rated responses.")
    negatives: int = Field(description="k: negative responses.")
    response_rate: float | None = Field(description="n / V; null without touchpoints.")
    negative_rate: float | None = Field(description="Raw k / n; null without responses.")
    adjusted_negative_rate: float = Field(
        description="Posterior mean of the negative rate, "
        "shrunk towards the baseline by the prior strength."
    )
    interval: IntervalRead = Field(description="90% credible interval of the adjusted rate.")
    baseline: float = Field(
        description="mu of the moment: its families' baselines mixed by its responses."
    )
    prior_strength: float = Field(description="kappa used for the moment.")
    target_negative_rate: float | None = Field(description="The moment's target, if set.")
    reference: float = Field(description="Target if set, else baseline.")
    priority: float = Field(
        description="V * (adjusted rate - reference): clients with a bad "
        "experience beyond the reference. Ranked by this, descending."
    )
    prob_worse: float = Field(
        description="Posterior probability that the true rate exceeds the reference."
    )
    q_value: float = Field(description="Bayesian false-discovery q-value of being worse.")
    confident_problem: bool = Field(description="q_value <= 0.10.")
    low_data: bool = Field(description="Fewer than 30 responses: read the figures with care.")
    mean_score: float | None = Field(description="Mean 0-100 score; null without responses.")
    complaints: int = Field(description="Touchpoints flagged as complaints.")
    trend: TrendRead = Field(description="Change against the previous window.")
    consistency: ConsistencyRead | None = Field(
        description="Consistency across teams; null when fewer than two teams have 10 "
        "responses or all answers agree."
    )
    native: NativeFigures = Field(description="CSAT, NPS and CES in their own units.")
    reasons: list[WeakSpotReason] = Field(description="Why the moment ranks where it does.")
    top_factors: list[TopFactorRead] = Field(
        description="Up to three factors the negative answers picked most, by adjusted share."
    )
    lost_time: LostTimeRead | None = Field(
        description="Time the clients said they lost; null when no answer said."
    )


class WeakSpotsRead(Schema):
    window: WindowRead = Field(description="The window and the previous one.")
    method: MethodRead = Field(description="Method and parameters, to reproduce every figure.")
    moments_ranked: int = Field(description="Moments with touchpoints in the window.")
    data: list[WeakSpot] = Field(
        description="Moments with at least `min_responses` responses, highest priority first."
    )
    insufficient_data: list[WeakSpot] = Field(
        description="Moments under `min_responses`, ranked the same way, listed apart."
    )


class BreakdownRow(Schema):
    dimension: str = Field(description="`team`, `agent` or `channel`.")
    member: str = Field(description="The team, agent or channel; empty when not given.")
    touchpoints: int = Field(description="Touchpoints.")
    responses: int = Field(description="Rated responses.")
    negatives: int = Field(description="Negative responses.")
    negative_rate: float | None = Field(description="Raw negative rate; null without responses.")
    adjusted_negative_rate: float = Field(
        description="Negative rate shrunk towards the moment's rate, by the spread between members."
    )
    interval: IntervalRead = Field(description="90% credible interval of the adjusted rate.")
    prob_worse: float = Field(
        description="Probability the member's true rate exceeds the moment's."
    )
    mean_score: float | None = Field(description="Mean 0-100 score.")
    complaints: int = Field(description="Complaints.")


class HotspotDimension(StrEnum):
    team = "team"
    channel = "channel"


class HotspotCell(Schema):
    member: str = Field(description="The team or channel; empty when not given.")
    touchpoints: int = Field(description="V: touchpoints of the moment by this member.")
    responses: int = Field(description="Rated responses.")
    negatives: int = Field(description="Negative responses.")
    negative_rate: float | None = Field(description="Raw negative rate; null without responses.")
    adjusted_negative_rate: float = Field(
        description="Negative rate shrunk towards the moment's rate, as the moment report's "
        "breakdown rows are, so that a cell of a few answers stays near its moment."
    )
    excess: float = Field(
        description="V * (adjusted rate - the moment's reference): clients with a bad "
        "experience beyond the reference in this cell. Cells without touchpoints are absent."
    )
    strongest: bool = Field(
        description="Among the `strongest_cells` cells of the matrix with the most excess, "
        "and at least one client in excess."
    )


class HotspotRow(Schema):
    rank: int = Field(description="Position of the moment in the weak spots (1 = fix first).")
    moment: str = Field(description="Moment key.")
    name: str = Field(description="Moment name.")
    touchpoints: int = Field(description="Touchpoints of the moment in the window.")
    responses: int = Field(description="Rated responses of the moment.")
    adjusted_negative_rate: float = Field(
        description="The moment's adjusted negative rate, as in the weak spots."
    )
    reference: float = Field(description="The moment's target if set, else its baseline.")
    priority: float = Field(description="The moment's priority, as in the weak spots.")
    cells: list[HotspotCell] = Field(
        description="The moment's cells with touchpoints, most excess first."
    )


class HotspotsRead(Schema):
    window: WindowRead = Field(description="The window and the previous one.")
    by: HotspotDimension = Field(description="What the columns are: `team` or `channel`.")
    members: list[str] = Field(description="The columns, most touchpoints first.")
    strongest_cells: int = Field(description="How many cells at most are marked `strongest`.")
    data: list[HotspotRow] = Field(description="The moments, in the order of the weak spots.")


class SeriesPoint(Schema):
    period: date = Field(description="First UTC day of the bucket.")
    touchpoints: int = Field(description="Touchpoints in the bucket.")
    responses: int = Field(description="Rated responses.")
    negatives: int = Field(description="Negative responses.")
    negative_rate: float | None = Field(description="Raw negative rate; null without responses.")
    interval: IntervalRead | None = Field(
        description="95% Wilson score interval of the raw negative rate; null without responses."
    )
    mean_score: float | None = Field(description="Mean 0-100 score; null without responses.")


class Distribution(Schema):
    scale: ScaleName = Field(description="Rating scale.")
    responses: int = Field(description="Answers on the scale.")
    counts: dict[str, int] = Field(description="Answers per scale value (every value listed).")


class NegativeComment(Schema):
    id: str = Field(description="Touchpoint id.")
    occurred_at: datetime = Field(description="When the touchpoint happened.")
    channel: str = Field(description="Channel.")
    team: str | None = Field(description="Team.")
    scale: ScaleName = Field(description="Scale of the rating.")
    value: int = Field(description="Value of the rating.")
    comment: str = Field(description="What the client wrote.")


class MomentTotals(Schema):
    touchpoints: int = Field(description="Touchpoints in the window.")
    responses: int = Field(description="Rated responses.")
    negatives: int = Field(description="Negative responses.")
    response_rate: float | None = Field(description="responses / touchpoints.")
    negative_rate: float | None = Field(description="Raw negative rate.")
    mean_score: float | None = Field(description="Mean 0-100 score.")
    complaints: int = Field(description="Complaints.")
    native: NativeFigures = Field(description="CSAT, NPS and CES in their own units.")


class TeamLimits(Schema):
    team: str = Field(description="The team; empty when not given.")
    responses: int = Field(description="Rated responses of the team.")
    negative_rate: float = Field(description="The team's raw negative rate.")
    limits_95: IntervalRead = Field(
        description="95% funnel control limits (z = 1.96) around the moment's raw negative rate "
        "for the team's responses (normal approximation to the binomial)."
    )
    limits_998: IntervalRead = Field(
        description="99.8% funnel control limits (z = 3.09), the same way."
    )


class MomentReport(Schema):
    moment: str = Field(description="Moment key.")
    name: str = Field(description="Moment name.")
    window: WindowRead = Field(description="The window.")
    granularity: Granularity = Field(description="Bucket of the time series (UTC).")
    totals: MomentTotals = Field(description="The whole window.")
    distribution: list[Distribution] = Field(description="Answers per value, per scale used.")
    series: list[SeriesPoint] = Field(description="Time series, oldest bucket first.")
    by_team: list[BreakdownRow] = Field(description="Per team, highest adjusted rate first.")
    team_consistency: ConsistencyRead | None = Field(
        description="The consistency test of the teams, as `/v1/insights/consistency` gives it "
        "(q-value across the window's moments); null when fewer than two teams have 10 "
        "responses or all answers agree."
    )
    team_limits: list[TeamLimits] = Field(
        description="The teams with responses in the order of `by_team`, each with the funnel "
        "control limits of its raw negative rate around the moment's (`totals.negative_rate`)."
    )
    by_agent: list[BreakdownRow] = Field(description="Per agent, highest adjusted rate first.")
    by_channel: list[BreakdownRow] = Field(description="Per channel, highest adjusted rate first.")
    negative_comments: list[NegativeComment] = Field(
        description="Latest comments left with negative ratings, newest first."
    )


class TeamRate(Schema):
    team: str = Field(description="Team.")
    responses: int = Field(description="Rated responses of the team on the moment.")
    negatives: int = Field(description="Negative responses.")
    negative_rate: float = Field(description="Raw negative rate.")


class ConsistencyItem(Schema):
    moment: str = Field(description="Moment key.")
    name: str = Field(description="Moment name.")
    consistency: ConsistencyRead = Field(description="Test of homogeneity across teams.")
    best_team: TeamRate = Field(
        description="Tested team with the lowest raw negative rate (never a team named worse)."
    )
    worst_team: TeamRate = Field(
        description="Tested team with the highest raw negative rate (never a team named better)."
    )


class ConsistencyList(Schema):
    window: WindowRead = Field(description="The window.")
    tests: TestsRead = Field(description="The tests used.")
    data: list[ConsistencyItem] = Field(
        description="Moments whose teams could be compared, most inconsistent first "
        "(lowest q-value, then highest phi)."
    )


class SilenceSignal(StrEnum):
    low_response_rate = "low_response_rate"
    no_bad_news = "no_bad_news"


class SilenceItem(Schema):
    moment: str = Field(description="Moment key.")
    name: str = Field(description="Moment name.")
    touchpoints: int = Field(description="Touchpoints in the window.")
    responses: int = Field(description="Rated responses.")
    response_rate: float = Field(description="responses / touchpoints.")
    missing_responses: float = Field(
        description="Responses expected at the overall response rate minus those received."
    )
    negatives: int = Field(description="Negative responses.")
    complaints: int = Field(description="Complaints.")
    signals: list[SilenceSignal] = Field(
        description="`low_response_rate`: under half the overall rate; `no_bad_news`: no "
        "complaint and no negative rating over a volume in the top quarter."
    )


class SilenceList(Schema):
    window: WindowRead = Field(description="The window.")
    overall_response_rate: float | None = Field(description="responses / touchpoints, all moments.")
    data: list[SilenceItem] = Field(description="Silent moments, most missing responses first.")


class Headline(Schema):
    touchpoints: int = Field(description="Touchpoints.")
    responses: int = Field(description="Rated responses.")
    response_rate: float | None = Field(description="responses / touchpoints.")
    negative_share: float | None = Field(description="Negative responses / responses.")
    complaints: int = Field(description="Complaints.")
    moments: int = Field(description="Moments with touchpoints.")
    native: NativeFigures = Field(description="CSAT, NPS and CES over all moments.")


class HeadlineChange(Schema):
    touchpoints: int = Field(description="Touchpoints now minus before.")
    responses: int = Field(description="Responses now minus before.")
    response_rate: float | None = Field(description="Change of the response rate.")
    negative_share: float | None = Field(description="Change of the negative share.")
    complaints: int = Field(description="Complaints now minus before.")
    nps: float | None = Field(description="Change of the NPS.")
    csat: float | None = Field(description="Change of the CSAT top-2-box share.")
    ces: float | None = Field(description="Change of the CES mean.")


class Overview(Schema):
    window: WindowRead = Field(description="The window and the previous one.")
    current: Headline = Field(description="Figures of the window.")
    previous: Headline = Field(description="Figures of the previous window.")
    change: HeadlineChange = Field(
        description="Current minus previous; null where either is missing."
    )


class WordsLanguage(StrEnum):
    en = "en"
    ru = "ru"
    auto = "auto"


class TermKind(StrEnum):
    word = "word"
    phrase = "phrase"


class WordExample(Schema):
    id: str = Field(description="Touchpoint id.")
    occurred_at: datetime = Field(description="When the touchpoint happened.")
    channel: str = Field(description="Channel.")
    team: str | None = Field(description="Team.")
    comment: str = Field(description="What the client wrote, as written.")


class WordRead(Schema):
    term: str = Field(
        description="A word, or two words written next to each other, in lower case with "
        "Russian ё read as е."
    )
    kind: TermKind = Field(description="`word`, or `phrase` for two words.")
    z: float = Field(
        description="z-score of the log-odds ratio: how far the term sets negative comments "
        "apart, in standard errors (positive: more frequent in negative comments)."
    )
    log_odds: float = Field(
        description="Log-odds ratio of the term in negative comments against the others, "
        "with the informative Dirichlet prior."
    )
    negative_count: int = Field(description="Negative comments that contain the term.")
    other_count: int = Field(description="Neutral and positive comments that contain the term.")
    examples: list[WordExample] = Field(
        description="Up to 3 of the latest negative comments that contain the term."
    )


class WordsMethod(Schema):
    statistic: str = Field(description="How terms are scored, with its source.")
    counting: str = Field(description="How a term is counted.")
    prior: str = Field(description="What the Dirichlet prior is made of.")
    prior_scale: float = Field(
        description="alpha0 / (terms counted): 1 would weigh the prior as much as the comments."
    )
    alpha0: float = Field(description="Total weight of the prior, in counted terms.")
    min_count: int = Field(description="Negative comments a term must be in to be listed.")
    max_comments: int = Field(description="Most recent comments read at most.")


class WordsRead(Schema):
    moment: str = Field(description="Moment key.")
    window: WindowRead = Field(description="The window (and the previous one, unused here).")
    team: str | None = Field(description="Only touchpoints of this team, if given.")
    channel: str | None = Field(description="Only touchpoints on this channel, if given.")
    lang: WordsLanguage = Field(
        description="`en` or `ru`: only comments written mostly in Latin or Cyrillic letters; "
        "`auto`: every comment, read in the language of its script."
    )
    comments_total: int = Field(
        description="Comments left with a rating in the window and filters."
    )
    comments_read: int = Field(description="Of those, the most recent ones read.")
    truncated: bool = Field(description="True when older comments were left unread.")
    negative_comments: int = Field(description="Negative comments read in the language asked.")
    other_comments: int = Field(
        description="Neutral and positive comments read in the language asked."
    )
    method: WordsMethod = Field(description="The statistic and its parameters.")
    data: list[WordRead] = Field(
        description="The terms most distinctive of negative comments, highest z first."
    )


class SentimentFactors(Schema):
    sentiment: str = Field(description="negative, neutral or positive.")
    answers: int = Field(description="The moment's answers of this sentiment in the window.")
    said_why: int = Field(description="Of them, answers that picked at least one factor.")
    factors: list[FactorShareRead] = Field(
        description="Every factor the moment offers for this sentiment, by adjusted share."
    )


class MomentFactorsRead(Schema):
    moment: str = Field(description="Moment key.")
    window: WindowRead = Field(description="The window counted.")
    factors_default: bool = Field(description="true: the moment offers its channel's defaults.")
    credible_level: float = Field(description="Level of the factors' credible intervals.")
    sentiments: list[SentimentFactors] = Field(description="Negative, neutral, then positive.")
    lost_time: LostTimeRead | None = Field(
        description="Time the clients said they lost; null when no answer said."
    )
