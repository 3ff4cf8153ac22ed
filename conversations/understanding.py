"""Language understanding: intent, language and entities from one customer message.

Pure Python, no model, no network. Customers write MSA, Moroccan Darija (Arabic script and
Latin "arabizi" with 3/7/9 for ع/ح/ق) and French, often mixed, with typos and emoji. The
pipeline is: normalise (one canonical form for matching) -> tokens -> weighted keywords and
phrases per intent (exact first, then rapidfuzz for typos) -> entities (index, date, contract,
months, service, reference) -> a decision with a confidence.

Dates: fast paths (ISO, numeric, relative words incl. Darija, day + month name incl. the
Moroccan month names) cover what customers write; dateparser (slow to load, ~0.5 ms a call)
is only asked for weekday names and "N days/weeks ago" phrases, rewritten into a French form
it is known to parse (research/perf-anchors.md section 4).

Every public function accepts any input and never raises.
"""

from __future__ import annotations

import itertools
import json
import re
import sys
import unicodedata
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache, lru_cache

__all__ = [
    "INTENTS",
    "RULE_INTENTS",
    "Understood",
    "detect_lang",
    "normalize",
    "parse_contract",
    "parse_date",
    "parse_index",
    "parse_months",
    "parse_no_photo",
    "parse_ordinal",
    "parse_reference",
    "parse_service",
    "parse_yes_no",
    "understand",
    "understand_command",
    "warm_up",
    "written_language",
]

INTENTS = (
    "reading",
    "balance",
    "deferral",
    "prepaid",
    "track",
    "agent",
    "agency",
    "language",
    "help",
    "cancel",
    "greeting",
    "unknown",
)
MAX_CHARS = 500  # analyse the head only: a 10,000-char paste must stay cheap
MIN_SCORE = 1.8  # below this the evidence is one weak word: say "unknown"


@dataclass(frozen=True)
class Understood:
    """What one message says. entities may hold: index (int), date (datetime.date), contract (str),
    months (int), service ("electricity"|"water"), reference (str, e.g. "DF-2026-000123") and, for
    the language intent, language ("ar"|"fr", the language asked for). confidence is 0..1: 1.0 for
    a clear keyword, ~0.5 when two intents compete, 0 for unknown. `source` says which layer
    decided ("rules", or "model" when the rules knew no word of it); `runner_up` is the model's
    second choice when the model decided."""

    intent: str
    lang: str
    entities: dict = field(default_factory=dict)
    confidence: float = 0.0
    source: str = "rules"
    runner_up: str | None = None


# --------------------------------------------------------------------------- normalisation

_APOSTROPHES = str.maketrans({c: "'" for c in "\u2019\u2018`\u00b4\u02bc\u02b9\u2032\uff07"})
_INVISIBLE = re.compile(r"[\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\u061c\u00ad\ufe0e\ufe0f]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MARKS = re.compile(r"[\u0300-\u036f\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed\u0640]")
_ARABIC_MAP = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ى": "ي",
        "ة": "ه",
        "ؤ": "و",
        "ئ": "ي",
        "ء": "",
        "ک": "ك",
        "ی": "ي",
        "ڭ": "ك",
        "گ": "ك",
        "ݣ": "ك",
        "ڤ": "ف",
        "پ": "ب",
        "ڨ": "ق",
        **{chr(0x0660 + i): str(i) for i in range(10)},
        **{chr(0x06F0 + i): str(i) for i in range(10)},
        "\u066b": ".",
        "\u066c": ",",
        "\u060c": ",",
        "\u061b": ";",
        "\u061f": "?",
        "\u066a": "%",
    }
)
_REPEATS = re.compile(r"([^\W\d_])\1{2,}")
_SPACES = re.compile(r"\s+")
# Latin tokens mixing letters and digits: arabizi ("l7sab", "3afak", "ta9sit") or a glued
# number and unit ("6mois", "100dh") that must be split, not read as letters.
_LATIN_RUN = re.compile(r"[a-z0-9]+")  # scanned token by token: lookahead regexes go quadratic on digit runs
_GLUED_UNIT = re.compile(r"(\d+)(fois|mois|dhs?|mad|kwh|kw|m3|eme|ere|er|e|h\d{0,2}|ans?|jours?|j|x)")
_KEEP_MIXED = {"m3", "m2", "co2", "h2o", "mp3", "mp4", "4g", "5g", "3g"}
_ARABIZI = str.maketrans({"7": "h", "9": "q", "5": "kh", "8": "gh"})  # 3 stays: ع has no Latin twin


def _fix_mixed(m: re.Match) -> str:
    tok = m.group(0)
    if tok.isdigit() or tok.isalpha() or tok in _KEEP_MIXED:
        return tok
    g = _GLUED_UNIT.fullmatch(tok)
    if g:
        return f"{g.group(1)} {g.group(2)}"
    if any(c in "0146" for c in tok):
        return tok  # "df2026", "a1", "b14": codes, not arabizi
    return tok.translate(_ARABIZI).replace("2", "")  # 2 is a hamza: "so2al" -> "soal"


def normalize(text: str) -> str:
    """The canonical form used for matching (Arabic letters unified, digits ASCII, French
    casefolded without accents, arabizi 7/9 read as h/q inside words)."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    # one message is normalised by the rules, the model's check and its features: kept for
    # the next call, bounded by NORMALIZED_KEPT messages of at most 1,000 characters
    return _normalized(text) if len(text) <= 1000 else _normalized.__wrapped__(text)


NORMALIZED_KEPT = 256


@lru_cache(maxsize=NORMALIZED_KEPT)
def _normalized(text: str) -> str:
    s = text.translate(_APOSTROPHES)
    s = unicodedata.normalize("NFKC", s)
    s = _INVISIBLE.sub("", s)
    s = _CONTROL.sub(" ", s)
    s = s.translate(_ARABIC_MAP).casefold()
    s = _MARKS.sub("", unicodedata.normalize("NFD", s)) if not s.isascii() else s
    s = _REPEATS.sub(r"\1\1", s)
    if any(c.isdigit() for c in s):
        s = _LATIN_RUN.sub(_fix_mixed, s)
    return _SPACES.sub(" ", s).strip()


_TOKEN = re.compile(r"[^\W_]+")
_AR_LETTER = re.compile(r"[\u0620-\u064a\u0671-\u06d3]")
_LATIN_LETTER = re.compile(r"[a-z]")


def _tokens(norm: str) -> list[str]:
    return _TOKEN.findall(norm)


def _is_arabic(tok: str) -> bool:
    return "\u0620" <= tok[0] <= "\u06ff"


# --------------------------------------------------------------------------- lexicons
# Weights: ~3 = names the intent on its own, ~2 = strong hint, ~1 = supporting word,
# 0.5 = shared by several intents. Written in natural spelling; normalised at import.

_WORDS: dict[str, list[tuple[float, str]]] = {
    "reading": [
        (
            3,
            "index indexe indexes l'index releve relevé relever relevés قراءه قراءة القراءه لاندكس لاندكيس المؤشر مؤشر",
        ),
        (2, "affiche قريت كيقرا نقرا qrit kayqra kaqra nqra sjlouh سجلو chiffre chiffres qra3a lqra3a lqraya"),
        (
            1.5,
            "transmettre transmets communiquer saisir photo nsift nsifet nsayft نصيفط نسيفط نرسل ارسال sift "
            "lhsab hsab الحساب",
        ),
        (
            1,
            "compteur compteurs عداد العداد الكونطور كونطور الكونتور كونتور lcompteur lkontor n3ti نعطي tasjil "
            "تسجيل consommation lconsommation",
        ),
        (0.5, "envoyer donner voici الرقم numero"),
    ],
    "balance": [
        (3, "solde montant impaye impayes impayee impayees factures المبلغ المستحق المستحقه"),
        (
            2,
            "facture factur fatura factura lfatura lfactura lfacture fatora فاتوره الفاتوره فاتورتي فواتير "
            "الفواتير فواتيري chhal chal shal شحال ghalya ghalia غاليه غالي chere cher nkhelles nkhles nkhlles "
            "nkhless نخلص payer أداء الأداء نؤدي ادفع ندفع",
        ),
        (
            1.5,
            "combien dois خاصني khassni khasni khesni المؤداه guichet fatourati فاتوراتي banque bank double "
            "doublé elevee elevé augmente تلعات طلعات tal3a tal3at 3liya عليا khlst خلصت",
        ),
        (
            1,
            "paye doit كم الفلوس حسابي compte flous lflous nkhlsou mkhlsin mkhelsin مخلصه الدفع factures fatorat "
            "fatourat fwater lfwater فواتر",
        ),
    ],
    "deferral": [
        (
            4,
            "facilite facilites delai delais echeancier echelonnement mensualite mensualites etaler reporter "
            "report taqsit taksit tqsit تقسيط التقسيط mohla mohlla مهله تاجيل ناجل نأجل اجال",
        ),
        (2.5, "دفعات dfe3at plusieurs paierai payerai"),
        (2, "nqderch nkderch نقدرش fois dfou3at dfo3at نقسم nqsem nqasem"),
        (1.5, "ma3ndich ماعنديش dfe3a دفعه اشهر chhour chhor chhar شهور"),
        (1, "etalement moyens"),
        (0.5, "momkin ممكن kolchi كلشي"),
    ],
    "prepaid": [
        (
            3,
            "prepaye prepayé prepaiement prepay recharge recharger rechargement nchargi chargit charji نشارجي "
            "شارجيت نشحن اشحن شحن تسبيق مسبق الكارط",
        ),
        (2.5, "avance lavance"),
        (2, "carte lcarte كارط charger الرصيد رصيد"),
        (1.5, "kwh credit lcredit crédit الكيلوات kilowat epuise n3mer نعمر عمرت"),
        (1, "سالا tsala tsalat sala"),
    ],
    "track": [
        (3, "suivi statut تتبع"),
        (2, "talab tlab talabi الطلب طلب طلبي acceptee accepté acceptée jawbtonich جاوبتونيش"),
        (
            1.5,
            "demande dossier reponse réponse attends etat wslat wsel wsal وصل tqbel تقبل حاله jdid ملف ملفي "
            "الملف milaf lmilaf traite traitee nouvelles",
        ),
        (1, "wqe3 وقع"),
        (0.5, "mazal toujours"),
    ],
    "agent": [
        (
            3,
            "conseiller conseillere reclamation reclamations plainte humain موظف مستشار شكايه شكايت شكوي chikaya "
            "chkaya 3ayto 3iyto 3ayeto rappelez rappeler عيطو bnadem",
        ),
        (
            2,
            "agent coupure panne fuite appelez contacter nhder nhdar نهضر نتكلم التحدث اتصل مقطوع مقطوعه انقطاع "
            "ntwasel tqta3 maqtou3 يتصل تتصلو technicien technicienne تقني teqni bloque تسرب katsreb عطب معطل "
            "khaser خاسر defectueux",
        ),
        (1.5, "contact parler quelqu'un quelqu مشكل probleme mouchkil mochkil kaydor tourne"),
        (1, "robot kaynach makaynach"),
        (0.5, "vite bzzaf"),
    ],
    "agency": [
        (3, "agence agences الوكاله وكاله الوكالات وكالات lwakala wakala lagence lwakalat"),
        (2.5, "horaire horaires"),
        (2, "bureau adresse عنوان ouvre ouverte ouvert ouverts ouvrez fermeture"),
        (1.5, "mhlola mhloula محلوله اقرب كتحل تحل كيحلو"),
        (1, "proche qriba qrib"),
    ],
    "language": [
        (
            3,
            "francais français francaise arabe langue عربيه العربيه بالعربيه الفرنسيه بالفرنسيه اللغه لغه "
            "الدارجه بالدارجه darija ddarija l3arbiya 3arbiya fransawiya lfransawiya fransawia lougha lugha "
            "anglais english arabic",
        ),
    ],
    "help": [
        (3, "aide help menu 3awni 3awnni عاوني ساعدني مساعده المساعده"),
        (2.5, "perdu الخدمات خدمات"),
        (2, "aider aidez"),
        (1.5, "نستعمل lbot fhemtch البوت معرفتش ma3reftch"),
        (1, "marche bot"),
        (0.5, "kifach kifash كيفاش comment"),
    ],
    "cancel": [
        (4, "annuler annule annulez annuli anuler الغا الغي لغي lghi"),
        (3, "stop annulation بلاش وقف arretez arrete"),
        (2.5, "nssa arreter"),
        (2, "baraka retour رجوع خلاص"),
        (1.5, "safi"),
    ],
    "greeting": [
        (
            2,
            "bonjour bonsoir salut bjr bsr slt coucou hello salam slm salaam salamo ahlan marhba mrhba السلام "
            "سلام مرحبا اهلا start merci شكرا choukran chokran chokrane hi labas wesh allo cv",
        ),
        (1.5, "3alikom alikom 3likom sbah msa صباح مسا"),
        (1, "عليكم الخير lkhir"),
    ],
}

# Multi-word cues, matched on the normalised text (word boundaries, any spacing).
_PHRASES: dict[str, list[tuple[str, float]]] = {
    "reading": [("personne n'est passe", 1.5), ("n'est pas passe", 1.5), ("ma jach", 1), ("ما جاش", 1)],
    "balance": [
        ("je dois", 1.5),
        ("يجب علي", 1),
        ("ce que je dois", 1),
        ("غير المؤداه", 2),
        ("شحال عليا", 1),
        ("a payer", 1),
    ],
    "deferral": [
        ("en plusieurs fois", 2),
        ("ghadi nkhelles", 2),
        ("غادي نخلص", 2),
        ("je paierai", 1),
        ("arrive pas a payer", 2.5),
        ("plus tard", 2),
        ("mn ba3d", 2),
        ("من بعد", 2),
        ("ma nqderch", 1),
        ("ما نقدرش", 1),
        ("chher jay", 1.5),
        ("الشهر الجاي", 1.5),
        ("pas les moyens", 2),
        ("une partie", 1.5),
        ("chwiya b chwiya", 3),
        ("شويه بشويه", 3),
        ("peux pas tout payer", 3),
        ("peux pas payer", 2.5),
        ("تعطيوني وقت", 3),
        ("3tiwni lwqt", 3),
        ("3tiwni chi wqt", 3),
        ("ne peux pas regler", 2.5),
        ("ma3ndich lflous", 2.5),
        ("ما عنديش الفلوس", 2.5),
        ("ma3ndich bach nkhelles", 2.5),
    ],
    "prepaid": [
        ("compteur a carte", 2),
        ("plus de credit", 1.5),
        ("dyal lcarte", 2),
        ("ديال الكارط", 2),
        ("ديال لكارط", 2),
        ("compteur dyal lcarte", 1),
    ],
    "track": [
        ("ou en est", 3),
        ("en est ma", 1),
        ("toujours pas", 1),
        ("ma demande", 0.5),
        ("fin wslat", 1),
        ("فين وصل", 1),
        ("اين وصل", 1.5),
        ("ما زال", 0.5),
        ("fin wsel", 1),
        # "was the (instalment) request accepted?": about a request already filed
        ("تقبل الطلب", 3),
        ("tqbel talab", 3),
        ("tqbel t-talab", 3),
        ("قبلتو الطلب", 3),
        ("demande a ete acceptee", 3),
        ("demande est acceptee", 3),
    ],
    "agent": [
        ("service client", 2.5),
        ("parler a", 1.5),
        ("parler avec", 1.5),
        ("une personne", 1.5),
        ("passez moi", 2),
        ("chi wahed", 1.5),
        ("شي واحد", 1.5),
        ("ma kaynach", 1.5),
        ("ما كاينش", 1.5),
        ("mettre en contact", 2),
    ],
    "agency": [
        ("fin kayna", 1.5),
        ("فين كاينه", 1.5),
        ("se trouve", 1),
        ("توجد", 1),
        ("plus proche", 1),
        # "where do I pay?": the place (balance words alone ask how much)
        ("fin nkhelles", 3),
        ("fin nkhless", 3),
        ("fin nkhles", 3),
        ("fin nkhlass", 3),
        ("fin nkhalas", 3),
        ("فين نخلص", 3),
        ("وين نخلص", 3),
        ("ou payer", 4.5),
        ("ou puis je payer", 4.5),
        ("ou je peux payer", 4.5),
    ],
    "language": [("b darija", 1), ("en francais", 1), ("en arabe", 1)],
    "help": [
        ("comment ca marche", 2.5),
        ("pouvez faire", 2.5),
        ("peux faire", 2),
        ("chno tqder", 2.5),
        ("شنو تقدر", 2.5),
        ("comprends rien", 2),
        ("besoin d'aide", 1),
        ("chno ndir", 1.5),
        ("شنو ندير", 1.5),
        ("كيفاش نستعمل", 1),
        ("puis je faire", 2.5),
        ("chno kayn", 1.5),
        ("شنو كاين", 1.5),
    ],
    "cancel": [
        ("laisse tomber", 4),
        ("laissez tomber", 4),
        ("ma bghitch", 3),
        ("ما بغيتش", 3),
        ("c'est bon", 1),
        ("veux plus", 3),
        ("ما بقيتش", 2.5),
        ("ma bqitch", 2.5),
    ],
    "greeting": [("sbah lkhir", 1), ("صباح الخير", 1), ("مسا الخير", 1), ("ca va", 2), ("au revoir", 2)],
}

# Tie-break order: acting on a wrong "cancel"/"agent" costs less than missing it.
_PRIORITY = {
    name: i
    for i, name in enumerate(
        (
            "cancel",
            "agent",
            "track",
            "deferral",
            "prepaid",
            "balance",
            "reading",
            "agency",
            "language",
            "help",
            "greeting",
        )
    )
}

_SLASH_COMMANDS = {
    "start": "greeting",
    "help": "help",
    "aide": "help",
    "menu": "help",
    "cancel": "cancel",
    "annuler": "cancel",
    "stop": "cancel",
    "lang": "language",
    "langue": "language",
    "language": "language",
}

# Language cues. French function words weigh 1, shared French loanwords 0.5; Darija words 1.5.
_FR_FUNCTION = set(
    [
        "je",
        "j",
        "tu",
        "il",
        "elle",
        "nous",
        "vous",
        "on",
        "le",
        "les",
        "un",
        "une",
        "des",
        "du",
        "de",
        "au",
        "aux",
        "et",
        "mais",
        "pour",
        "par",
        "avec",
        "sans",
        "sur",
        "dans",
        "en",
        "est",
        "c",
        "ce",
        "cet",
        "cette",
        "ces",
        "mon",
        "mes",
        "ton",
        "tes",
        "votre",
        "vos",
        "notre",
        "nos",
        "qui",
        "que",
        "qu",
        "quoi",
        "quel",
        "quelle",
        "quels",
        "comment",
        "combien",
        "pourquoi",
        "quand",
        "ne",
        "n",
        "pas",
        "plus",
        "tres",
        "trop",
        "bien",
        "bon",
        "bonjour",
        "bonsoir",
        "salut",
        "merci",
        "svp",
        "stp",
        "oui",
        "non",
        "veux",
        "voudrais",
        "veut",
        "peux",
        "peut",
        "pouvez",
        "dois",
        "doit",
        "faire",
        "fait",
        "ai",
        "avoir",
        "suis",
        "etre",
        "sont",
        "y",
        "ici",
        "voila",
        "voici",
        "hier",
        "demain",
        "aujourd",
        "hui",
        "ca",
        "me",
        "moi",
        "te",
        "toi",
        "se",
        "lui",
        "leur",
        "leurs",
        "ou",
        "si",
        "deja",
        "encore",
        "toujours",
        "rien",
        "beaucoup",
        "aussi",
        "alors",
        "donc",
        "parce",
        "puis",
        "je",
        "suis",
        "j'ai",
        "bjr",
        "bsr",
        "slt",
        "coucou",
        "d'accord",
        "daccord",
        "s'il",
        "plait",
        "besoin",
        "comprends",
        "souhaite",
        "aimerais",
        "savoir",
        "connaitre",
        "recu",
        "reçu",
        "quelle",
        "quels",
        "quelles",
    ]
)
_FR_CONTENT = set(
    [
        "facture",
        "factures",
        "compteur",
        "index",
        "releve",
        "agence",
        "demande",
        "suivi",
        "annuler",
        "aide",
        "paiement",
        "payer",
        "montant",
        "solde",
        "impayees",
        "impayes",
        "eau",
        "electricite",
        "prepaye",
        "recharge",
        "credit",
        "carte",
        "conseiller",
        "reclamation",
        "plainte",
        "humain",
        "adresse",
        "horaires",
        "proche",
        "langue",
        "francais",
        "arabe",
        "parler",
        "reponse",
        "dossier",
        "delai",
        "echeancier",
        "facilites",
        "report",
        "mois",
        "fois",
        "jours",
        "semaine",
        "envoyer",
        "consommation",
        "photo",
        "chiffre",
        "affiche",
        "contrat",
        "numero",
        "service",
        "client",
        "robot",
        "quelqu",
        "personne",
        "passe",
        "coupure",
        "menu",
        "temps",
        "match",
        "soir",
        "kilo",
        "tomates",
        "demenage",
    ]
)
_DARIJA = set(
    [
        "bghit",
        "bghina",
        "bgha",
        "dyal",
        "dyali",
        "dyalek",
        "dyalna",
        "chhal",
        "chal",
        "shal",
        "wach",
        "was",
        "kifach",
        "kifash",
        "3afak",
        "afak",
        "khass",
        "khassni",
        "khasni",
        "nkhelles",
        "nkhles",
        "lma",
        "do",
        "ddo",
        "lfatura",
        "lfactura",
        "lfacture",
        "ana",
        "nta",
        "nti",
        "howa",
        "hiya",
        "hna",
        "daba",
        "kayn",
        "kayna",
        "kaynach",
        "makaynch",
        "had",
        "hadi",
        "hadak",
        "li",
        "3la",
        "3lach",
        "3ndi",
        "3andi",
        "ma3ndich",
        "bzaf",
        "bzzaf",
        "safi",
        "wakha",
        "iyeh",
        "iyah",
        "eyeh",
        "lyoum",
        "lyouma",
        "lbareh",
        "ghedda",
        "ghda",
        "walakin",
        "walakine",
        "kolchi",
        "machi",
        "mazal",
        "m3a",
        "m3aya",
        "m3ak",
        "chi",
        "wahed",
        "wahda",
        "f",
        "b",
        "mn",
        "men",
        "3awni",
        "chno",
        "chnou",
        "achno",
        "fhemt",
        "fhemtch",
        "ndir",
        "dir",
        "tqder",
        "nqder",
        "nqderch",
        "salam",
        "slm",
        "salaam",
        "ahlan",
        "marhba",
        "sbah",
        "lkhir",
        "msa",
        "hder",
        "nhder",
        "kanfhemch",
        "liya",
        "lia",
        "lik",
        "fin",
        "jat",
        "wsel",
        "wslat",
        "talab",
        "tal3a",
        "ghalya",
        "jatni",
        "khlst",
        "fatet",
        "3liya",
        "n3ref",
        "nsift",
        "n3ti",
        "qrit",
        "lcompteur",
        "lwakala",
        "mhlola",
        "qriba",
        "lghi",
        "nssa",
        "baraka",
        "annuli",
        "bdel",
        "lougha",
        "l3arbiya",
        "fransawiya",
        "hta",
        "chwiya",
        "tzidouni",
        "nchargi",
        "chargit",
        "tsala",
        "lcredit",
        "lcarte",
        "bqatch",
        "khdama",
        "mohla",
        "momkin",
        "taqsit",
        "dfe3a",
        "dfe3at",
        "chhour",
        "chher",
        "chhar",
        "jay",
        "ta3",
        "3iyto",
        "3ayto",
        "chikaya",
        "bnadem",
        "ntwasel",
        "sjlouh",
        "wela",
        "wla",
        "rah",
        "raha",
        "ghir",
        "gha",
        "bach",
        "bash",
        "nkhdem",
        "lbot",
        "nkhdmou",
        "3tini",
        "3tina",
        "t9bel",
        "tqbel",
        "jdid",
        "jawbtonich",
        "sla",
        "lhouma",
        "mqtou3",
        "tqta3",
        "lagence",
        "dakchi",
        "lflous",
        "flous",
        "hakka",
        "nhar",
        "ssebt",
        "sebt",
        "l7ed",
        "lhed",
        "ttlat",
        "larb3",
        "lkhmis",
        "jjem3a",
        "tnin",
        "ltnin",
    ]
)
_AMBIGUOUS_LATIN = {"la", "ma", "fin", "a", "l", "d", "o", "do"}  # French and Darija both use them
# Frequent Arabic words that must never be fuzzy-matched to a keyword ("الله" is one edit from "اللغه").
_AR_STOP = set(
    [
        "الله",
        "والله",
        "ان",
        "شاء",
        "ما",
        "لا",
        "في",
        "من",
        "على",
        "الى",
        "واش",
        "شي",
        "ديال",
        "ديالي",
        "هاد",
        "هادي",
        "هادا",
        "باش",
        "انا",
        "نتا",
        "انت",
        "هو",
        "هي",
        "حنا",
        "هما",
        "عافاك",
        "الخير",
        "بزاف",
        "كاين",
        "كاينه",
        "عندي",
        "عندنا",
        "ليا",
        "ليك",
        "مع",
        "غير",
        "حتى",
        "شنو",
        "علاش",
        "كيفاش",
        "فين",
        "اش",
        "راه",
        "راني",
        "واحد",
    ]
)

# Arabic clitics, tried only when the whole token is not in a lexicon.
_AR_PREFIXES = ("وال", "فال", "بال", "كال", "لل", "ال", "و", "ف", "ب", "ل")
_AR_SUFFIXES = ("ها", "هم", "كم", "نا", "ني", "ي", "ك", "و")


def _build_lexicon():
    lex: dict[str, dict[str, float]] = {}
    for intent, tiers in _WORDS.items():
        for weight, words in tiers:
            for w in words.split():
                for tok in _tokens(normalize(w)) if "'" in w else [normalize(w)]:
                    if len(tok) < 2:
                        continue
                    slot = lex.setdefault(tok, {})
                    slot[intent] = max(slot.get(intent, 0.0), float(weight))
    phrases = []
    for intent, items in _PHRASES.items():
        for phrase, weight in items:
            body = r"[\s-]+".join(re.escape(p) for p in re.split(r"[\s-]+", normalize(phrase)))
            first = _tokens(normalize(phrase))[0]  # cheap pre-check before running the regex
            phrases.append((first, rf"(?<!\w){body}(?!\w)", intent, weight))  # compiled when first needed
    return lex, phrases


_LEX, _PHRASE_RES = _build_lexicon()


@cache
def _phrase_re(source: str) -> re.Pattern[str]:
    """A phrase's regex, compiled the first time a message holds its first word: compiling all
    of them cost every start ~3.5 ms (`addad understand` is one message)."""
    return re.compile(source)


_FR_FUNCTION = {normalize(w) for w in _FR_FUNCTION}
_FR_CONTENT = {normalize(w) for w in _FR_CONTENT}
_DARIJA = {normalize(w) for w in _DARIJA}
_AR_STOP = {normalize(w) for w in _AR_STOP}
_STOP = _FR_FUNCTION | _DARIJA | _AMBIGUOUS_LATIN | _AR_STOP
_FUZZ_LATIN = [k for k in _LEX if len(k) >= 5 and not _is_arabic(k)]
_FUZZ_ARABIC = [k for k in _LEX if len(k) >= 5 and _is_arabic(k)]


def _variants(tok: str):
    yield tok
    if _is_arabic(tok):
        for p in _AR_PREFIXES:
            if tok.startswith(p) and len(tok) - len(p) >= 2:
                yield tok[len(p) :]
                break
        stem = tok
        for p in _AR_PREFIXES:
            if stem.startswith(p) and len(stem) - len(p) >= 3:
                stem = stem[len(p) :]
                break
        for s in _AR_SUFFIXES:
            if stem.endswith(s) and len(stem) - len(s) >= 2:
                base = stem[: -len(s)]
                yield base
                if base.endswith("ت"):  # فاتورتي -> فاتوره (ta marbuta before a suffix)
                    yield base[:-1] + "ه"
                yield "ال" + base
                break
    elif tok.startswith("l") and len(tok) > 4:  # Darija article glued to a loanword: "lfacture"
        yield tok[1:]


@lru_cache(maxsize=8192)
def _lookup(tok: str) -> tuple[tuple[str, float], ...]:
    """(intent, weight) pairs for one token: exact, then clitic-stripped, then fuzzy (typos)."""
    for v in _variants(tok):
        hit = _LEX.get(v)
        if hit:
            return tuple(hit.items())
    if tok in _STOP or tok.isdigit():
        return ()
    arabic = _is_arabic(tok)
    if len(tok) < 5:  # short words are one edit away from too many others
        return ()
    cutoff = 85 if len(tok) < 6 or arabic else 80
    from rapidfuzz import fuzz, process  # (here: most messages never need it, `addad understand` starts without it)

    best = process.extractOne(tok, _FUZZ_ARABIC if arabic else _FUZZ_LATIN, scorer=fuzz.ratio, score_cutoff=cutoff)
    if not best:
        return ()
    factor = 0.85 * best[1] / 100.0
    return tuple((intent, w * factor) for intent, w in _LEX[best[0]].items())


# --------------------------------------------------------------------------- language

_ARABIZI_LETTER = re.compile(r"[a-z][2379]|[2379][a-z]")


def _is_arabizi(tok: str) -> bool:
    """ "3afak", "l7sab", "m3a": digits used as letters (not "m3", "6mois", "df2026")."""
    return (
        not tok.isdigit()
        and not tok.isalpha()
        and tok not in _KEEP_MIXED
        and not _GLUED_UNIT.fullmatch(tok)
        and bool(_ARABIZI_LETTER.search(tok))
    )


def _lang_scores(raw_lower: str, tokens: list[str]) -> tuple[float, float]:
    fr = dar = 0.0
    for t in tokens:
        if _is_arabic(t) or t.isdigit() or t in _AMBIGUOUS_LATIN:
            continue
        if t in _DARIJA:
            dar += 1.5
        elif t in _FR_FUNCTION:
            fr += 1.0
        elif t in _FR_CONTENT:
            fr += 0.5
        elif t[0] == "l" and t[1:] in _FR_CONTENT:
            dar += 1.0  # "lcompteur", "lfacture": French noun with the Darija article
        elif len(t) >= 5 and t.endswith("ch") and t.startswith("ma") and t != "match":
            dar += 1.5  # glued negation: "mabghitch", "makaynch"
    for a, b in itertools.pairwise(tokens):
        if a == "ma" and len(b) >= 4 and b.endswith(("ch", "sh")) and not _is_arabic(b):
            dar += 2.0  # split negation: "ma bghitch", "ma n9derch"
    if any(c.isdigit() for c in raw_lower):
        dar += 2.0 * sum(1 for m in _LATIN_RUN.finditer(raw_lower) if _is_arabizi(m.group(0)))
    return fr, dar


def _hint(hint) -> str | None:
    """ "ar"/"fr" from a hint such as Telegram's language_code ("fr-FR", "ar"); None otherwise."""
    code = hint[:2].lower() if isinstance(hint, str) else None
    return code if code in ("ar", "fr") else None


def _detect(raw: str, norm: str, tokens: list[str], hint: str | None) -> str:
    hint = _hint(hint)
    ar_letters = len(_AR_LETTER.findall(norm))
    latin_letters = len(_LATIN_LETTER.findall(norm))
    if ar_letters and ar_letters >= latin_letters * 0.5:
        return "ar"
    if not latin_letters:
        if ar_letters or re.search(r"[\u0660-\u0669\u06f0-\u06f9]", raw):
            return "ar"  # Arabic-Indic digits come from an Arabic keyboard
        return hint or "ar"
    fr, dar = _lang_scores(raw.casefold(), tokens)
    if ar_letters:
        dar += 2.0
    if abs(fr - dar) <= 1.0 and hint:  # one word ("ok", "merci", "index") is not enough to overrule
        return hint
    return "ar" if dar > fr else "fr"


def written_language(text: str, now: str) -> str | None:
    """The other language, when a message is plainly written in it: the chat then follows the
    customer. Plainly: two Arabic words and hardly a Latin letter ("شحال خاصني نخلص" in a French
    chat); three words of French with nothing of Darija ("je veux payer en 3 fois" in an Arabic
    one). One word ("ok", "نعم", "merci"), arabizi (Darija: `ar`), a mixed message: None, the chat
    keeps its language. Cheap where it says nothing (one regex search on a French chat's texts)."""
    try:
        if not isinstance(text, str) or not text:
            return None
        raw = text[:MAX_CHARS]
        if now == "fr":
            if not _AR_LETTER.search(raw):
                return None
            norm = normalize(raw)
            words = [t for t in _tokens(norm) if _is_arabic(t)]
            latin = len(_LATIN_LETTER.findall(norm))
            ar = len(_AR_LETTER.findall(norm))
            return "ar" if len(words) >= 2 and latin * 10 <= ar else None
        if now == "ar":
            if raw.count(" ") < 2 or _AR_LETTER.search(raw):
                return None
            norm = normalize(raw)
            tokens = _tokens(norm)
            if sum(1 for t in tokens if not t.isdigit()) < 3:
                return None
            fr, dar = _lang_scores(raw.casefold(), tokens)
            return "fr" if fr >= 2.0 and dar == 0 else None
    except Exception:  # never let a strange message break the conversation
        return None
    return None


def detect_lang(text: str, hint: str | None = None) -> str:
    """ "ar" (MSA, Darija in either script) or "fr"; the hint decides when the text does not."""
    try:
        raw = (text or "")[:MAX_CHARS] if isinstance(text, str) else ""
        norm = normalize(raw)
        return _detect(raw, norm, _tokens(norm), hint)
    except Exception:  # never let a strange message break the conversation
        return _hint(hint) or "ar"


# --------------------------------------------------------------------------- references, phones, contracts

_REFERENCE = re.compile(r"(?<![a-z0-9])(df|in|pp|pv|cb|br|mu)[\s_-]?(20\d\d)[\s_-]?(\d{1,6})(?!\d)")
_PHONE = re.compile(r"(?<!\d)(?:(?:\+|00)\s?212[\s.-]?\(?0?\)?[\s.-]?[5-8]|0[5-8])(?:[\s.-]?\d){8}(?!\d)")
_CONTRACT_KEYED = re.compile(
    r"(?<!\w)(?:n°|no|num|numero|contrat|contract|kontra|lcontrat|contra|abonnement|client|"
    r"رقم العقد|رقم عقد|العقد|عقد|رقم الزبون|compteur|lcompteur|العداد رقم)"
    r"(?:\s*(?:de|du|d'|n°|no|numero|رقم))?(?:\s*(?:contrat|client))?\s*[:#°=-]?\s*(\d{6,10})(?!\d)"
)
_METER_WORD = re.compile(r"compteur|العداد")
_CONTRACT_TOPIC = re.compile(r"(?<!\w)(contrat|contract|kontra|lcontrat|العقد|عقد|abonnement|رقم الزبون)")
_BARE_CONTRACT = re.compile(r"(?<![\d.,'])\d{6,10}(?![\d.,']\d)")
# The words that only name a contract around its number ("رقم العقد 1000001", "mon n° de
# contrat c'est ..."): a message of these and the number says who writes, not what for. Words
# as `WORD` finds them in normalised text (two letters or more, no digits: "3afak" is "afak").
_CONTRACT_ONLY_WORDS = frozenset(
    [
        "no",
        "num",
        "numero",
        "contrat",
        "contract",
        "kontra",
        "lcontrat",
        "contra",
        "abonnement",
        "client",
        "de",
        "du",
        "mon",
        "ma",
        "my",
        "voici",
        "voila",
        "est",
        "cest",
        "hada",
        "howa",
        "hwa",
        "dyal",
        "dyali",
        "svp",
        "stp",
        "afak",
        "رقم",
        "العقد",
        "عقد",
        "الزبون",
        "ديال",
        "ديالي",
        "هو",
        "ها",
        "هاهو",
        "هذا",
        "عافاك",
    ]
)


def _names_only_contract(norm: str, contract: tuple[str, tuple[int, int]] | None) -> bool:
    if not contract:
        return False
    a, b = contract[1]
    return all(w in _CONTRACT_ONLY_WORDS for w in WORD.findall(norm[:a] + " " + norm[b:]))


def parse_reference(text: str) -> str | None:
    """A request reference such as DF-2026-000123 (prefixes DF, IN, PP, PV, CB, BR, MU), canonical form."""
    try:
        m = _REFERENCE.search(normalize(text))
    except Exception:
        return None
    if not m:
        return None
    return f"{m.group(1).upper()}-{m.group(2)}-{int(m.group(3)):06d}"


def _contract_in(norm: str) -> tuple[str, tuple[int, int]] | None:
    masked = _mask(norm, [p.span() for p in _PHONE.finditer(norm)]) if "0" in norm else norm
    for m in _CONTRACT_KEYED.finditer(masked):
        if m.group(1).startswith("0") and _METER_WORD.search(m.group(0)):
            continue  # "compteur 0031207": the dials as the meter shows them, an index
        return m.group(1), m.span(1)
    if _CONTRACT_TOPIC.search(norm):
        bare = _BARE_CONTRACT.search(masked)
        if bare:
            return bare.group(0), bare.span()
    return None


def parse_contract(text: str) -> str | None:
    """A contract number: 6-10 digits after contrat/n°/رقم العقد/compteur..., or a bare 6-10 digit
    number in a message that talks about a contract."""
    try:
        found = _contract_in(normalize(text)[:MAX_CHARS])
    except Exception:
        return None
    return found[0] if found else None


# --------------------------------------------------------------------------- service

_SERVICE = {
    "electricity": set(
        normalize(w)
        for w in [
            "electricite",
            "électricité",
            "electrique",
            "électrique",
            "elec",
            "lectricite",
            "الكهرباء",
            "كهرباء",
            "الكهربا",
            "كهربا",
            "ضو",
            "الضو",
            "الضوء",
            "ضوء",
            "do",
            "ddo",
            "dou",
            "dow",
            "trisinti",
            "trisiti",
            "triciti",
            "trissinti",
            "ttrisinti",
            "kahraba",
            "lkahraba",
            "lkahrba",
        ]
    ),
    "water": set(normalize(w) for w in ["eau", "eaux", "l'eau", "الماء", "الما", "lma", "lmaa", "lmae", "لما", "للما"]),
}


def _service_in(tokens: list[str]) -> str | None:
    found = set()
    for t in tokens:
        for name, words in _SERVICE.items():
            if t in words or (_is_arabic(t) and len(t) > 3 and t[0] in "وفبل" and t[1:] in words):
                found.add(name)
    return found.pop() if len(found) == 1 else None


_ELIDED_SERVICE = re.compile(r"(?<!\w)([ld])'(ma|maa|do|dou|ddo)(?!\w)")  # "l'ma", "d'do": one word


def parse_service(text: str) -> str | None:
    """ "electricity" or "water" when exactly one of them is named."""
    try:
        return _service_in(_tokens(_ELIDED_SERVICE.sub(r"\1\2", normalize(text)[:MAX_CHARS])))
    except Exception:
        return None


# --------------------------------------------------------------------------- dates

_MONTHS: dict[str, int] = {}
for _month, _names in enumerate(
    [
        "janvier janv jan يناير جانفي كانون الثاني",
        "fevrier fevr fev فبراير فيفري شباط",
        "mars مارس اذار",
        "avril avr ابريل أبريل افريل نيسان",
        "mai ماي مايو ايار",
        "juin يونيو يونيه جوان حزيران",
        "juillet juil يوليوز يوليو جويليه تموز",
        "aout غشت اغسطس أغسطس اوت",
        "septembre sept sep شتنبر سبتمبر ايلول",
        "octobre oct اكتوبر أكتوبر",
        "novembre nov نونبر نوفمبر",
        "decembre dec دجنبر ديسمبر",
    ],
    start=1,
):
    for _name in _names.split():
        _MONTHS[normalize(_name)] = _month
_MONTHS[normalize("كانون الثاني")] = 1
_MONTHS[normalize("تشرين الأول")] = 10
_MONTHS[normalize("تشرين الثاني")] = 11
_MONTHS[normalize("كانون الأول")] = 12
_MONTHS.pop(normalize("كانون"), None)
_MONTHS.pop(normalize("الثاني"), None)
_MONTH_ALT = "|".join(sorted((re.escape(k).replace(r"\ ", r"\s+") for k in _MONTHS), key=len, reverse=True))

_RELATIVE = [  # longest first: "avant hier" before "hier", "بعد غدوه" before "غدوه"
    (
        -2,
        "avant-hier|avant hier|avant hiers|قبل امس|قبل الامس|قبل البارح|قبل لبارح|اول امس|اول البارح|"
        "awwel lbareh|awel lbareh|awal lbareh|awwel lbarh|awel lbarh|qbel lbareh|qbal lbareh",
    ),
    (2, "apres-demain|apres demain|بعد غد|بعد غدا|بعد غدوه|بعد غدوا|ba3d ghedda|ba3d ghda|ba3d ghdda"),
    (-1, "hier|yesterday|امس|الامس|البارح|لبارح|البارحه|لبارحه|lbareh|lbarh|lbarah|lbareh|bareh|lbaraha"),
    (0, "aujourd'hui|aujourd hui|aujourdhui|aujourd'hui|auj|today|اليوم|lyoum|lyouma|lyoma|lyom|lyoum"),
    (1, "demain|tomorrow|غدا|غدوه|غدوا|ghedda|ghda|ghdda|ghadda|ghedwa|ghdwa"),
]
_RELATIVE_RE = [
    (off, re.compile(rf"(?<!\w)(?:{alts})(?!\w)"))
    for off, alts in (
        (o, "|".join(re.escape(normalize(a)).replace(r"\ ", r"\s+") for a in alts.split("|"))) for o, alts in _RELATIVE
    )
]

_ISO = re.compile(r"(?<![\d/.-])(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?![\d/.-]?\d)")
_DMY = re.compile(r"(?<![\d/.-])(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})(?![\d/.-]?\d)")
_DM = re.compile(r"(?<![\d/.,-])(\d{1,2})/(\d{1,2})(?![\d/]|[.,]\d)")
_DAY_MONTH = re.compile(
    rf"(?<![\w.,])(\d{{1,2}}|1er|premier)(?:\s*(?:er|eme))?\s*(?:de\s+|f\s+|ف\s*)?"
    rf"({_MONTH_ALT})(?:\s+((?:19|20)\d\d))?(?!\w)"
)

# Weekdays: the first list is unambiguous; the second only counts after "nhar"/"نهار" because
# the same words mean "three" (tlata, tlat), "until" (لحد) or "Saturday/sabbath" loosely.
_WEEKDAYS: dict[str, str] = {}
_NHAR_WEEKDAYS: dict[str, str] = {}
for _fr, _free, _after_nhar in (
    ("lundi", "lundi الاثنين الإثنين", "الاتنين التنين tnin ltnin letnin etnin"),
    ("mardi", "mardi الثلاثاء", "الثلاثا التلات التلاتا tlat ltlat ttlat tlata"),
    ("mercredi", "mercredi الأربعاء", "الاربعا لاربع larb3 larbe3 larba3"),
    ("jeudi", "jeudi الخميس", "لخميس lkhmis lkhamis khmis"),
    ("vendredi", "vendredi الجمعة", "جمعه jjem3a jem3a ljem3a jjma3"),
    ("samedi", "samedi السبت", "سبت ssebt sebt ssbt"),
    ("dimanche", "dimanche الأحد", "لحد l7ed lhed l7ad lhad"),
):
    for _a in _free.split():
        _WEEKDAYS[normalize(_a)] = _fr
    for _a in _after_nhar.split():
        _NHAR_WEEKDAYS[normalize(_a)] = _fr
_NHAR_WEEKDAYS.update(_WEEKDAYS)
_WEEKDAY_ALT = "|".join(sorted(map(re.escape, _WEEKDAYS), key=len, reverse=True))
_NHAR_ALT = "|".join(sorted(map(re.escape, _NHAR_WEEKDAYS), key=len, reverse=True))
_WEEKDAY_RE = re.compile(
    rf"(?<!\w)(?:(?:nhar|نهار)\s+({_NHAR_ALT})|(?:le\s+)?({_WEEKDAY_ALT}))"
    rf"(?:\s+(dernier|passe|prochain|الماضي|الفايت|اللي\s+فات|لي\s+فات|li\s+fat|lli\s+fat|"
    rf"الجاي|jay|الماضيه))?(?!\w)"
)
_NUM_WORDS = {
    normalize(k): v
    for k, v in {
        "un": 1,
        "une": 1,
        "deux": 2,
        "trois": 3,
        "quatre": 4,
        "cinq": 5,
        "six": 6,
        "sept": 7,
        "huit": 8,
        "neuf": 9,
        "dix": 10,
        "onze": 11,
        "douze": 12,
        "quinze": 15,
        "dix-huit": 18,
        "vingt": 20,
        "vingt-quatre": 24,
        "trente": 30,
        "trente-six": 36,
        "واحد": 1,
        "واحده": 1,
        "جوج": 2,
        "زوج": 2,
        "اثنين": 2,
        "اثنان": 2,
        "ثلاثه": 3,
        "تلاته": 3,
        "ثلاث": 3,
        "تلت": 3,
        "اربعه": 4,
        "ربعه": 4,
        "ربع": 4,  # Darija "ربع مرات"; only read before a month unit
        "اربع": 4,
        "خمسه": 5,
        "خمس": 5,
        "سته": 6,
        "ست": 6,
        "سبعه": 7,
        "سبع": 7,
        "تسع": 9,
        "ثمان": 8,
        "ثمانيه": 8,
        "تمنيه": 8,
        "تسعه": 9,
        "عشره": 10,
        "عشر": 10,
        "حداش": 11,
        "اطناش": 12,
        "طناش": 12,
        "اثنا عشر": 12,
        "اثني عشر": 12,
        "wahed": 1,
        "wa7ed": 1,
        "jouj": 2,
        "jooj": 2,
        "zouj": 2,
        "tlata": 3,
        "tleta": 3,
        "reb3a": 4,
        "rb3a": 4,
        "arba3": 4,
        "arb3a": 4,
        "rab3a": 4,
        "arba": 4,
        "khamssa": 5,
        "khmsa": 5,
        "sebaa": 7,
        "sab3a": 7,
        "tmanya": 8,
        "tmnia": 8,
        "tis3a": 9,
        "3achra": 10,
        "ashra": 10,
        "khamsa": 5,
        "sta": 6,
        "setta": 6,
        "sitta": 6,
        "seb3a": 7,
        "tmnya": 8,
        "tmenya": 8,
        "tes3a": 9,
        "3echra": 10,
        "3chra": 10,
        "hdach": 11,
        "7dach": 11,
        "tnach": 12,
        "tnache": 12,
        "tnash": 12,
        "tlt": 3,
        "joj": 2,
        "khams": 5,
        "tes3": 9,
        "ts3a": 9,
        "sb3a": 7,
        "seb3": 7,
        "stta": 6,
        "sett": 6,
        "trois fois": 3,
        "seize": 16,
        "treize": 13,
        "quatorze": 14,
        "dix-sept": 17,
        "dix-neuf": 19,
        "ثلاثه عشر": 13,
        "تلطاش": 13,
        "اربعه عشر": 14,
        "ربعطاش": 14,
        "خمسه عشر": 15,
        "خمسطاش": 15,
        "سته عشر": 16,
        "سطاش": 16,
        "سبعه عشر": 17,
        "ثمانيه عشر": 18,
        "تمنطاش": 18,
        "تسعه عشر": 19,
        "عشرين": 20,
        "عشرون": 20,
        "اربعه وعشرين": 24,
        "اربعه و عشرين": 24,
        "ربعه وعشرين": 24,
        "3ichrin": 20,
        "3chrin": 20,
    }.items()
}
_NUM_ALT = "|".join(sorted((re.escape(k).replace(r"\ ", r"\s+") for k in _NUM_WORDS), key=len, reverse=True))
_AGO = re.compile(
    rf"(?<!\w)(il\s+y\s+a|y\s+a|ya|depuis|قبل|منذ|من|hadi|هادي|مده)\s+(\d{{1,3}}|{_NUM_ALT})?\s*"
    rf"(jours?|j|semaines?|يوم|يومين|ايام|اسبوع|اسبوعين|اسابيع|simana|simanat|iyam|ayam|yam|"
    rf"iyyam)(?!\w)"
)
_AGO_BARE_OK = frozenset(normalize(w) for w in ("il y a", "قبل", "منذ"))
_AGO_AFTER = re.compile(
    rf"(?<!\w)(\d{{1,3}}|{_NUM_ALT})\s*(jours?|يوم|ايام|iyam|ayam|yam)\s+(?:hadi|هادي|"
    rf"ago|plus\s+tot)(?!\w)"
)


def _num(word: str | None) -> int | None:
    if not word:
        return None
    if word.isdecimal():
        return int(word)
    return _NUM_WORDS.get(_SPACES.sub(" ", word))


def _safe_date(y: int, m: int, d: int) -> date | None:
    try:
        return date(y, m, d)
    except ValueError:
        return None


def _resolve_year(d: int, m: int, today: date, prefer: str) -> date | None:
    cand = _safe_date(today.year, m, d)
    if cand is None:  # 29 February in a common year: the nearest leap year in the preferred direction
        step = -1 if prefer == "past" else 1
        for k in range(1, 9):
            cand = _safe_date(today.year + step * k, m, d)
            if cand:
                return cand
        return None
    if prefer == "past" and cand > today:
        return _safe_date(today.year - 1, m, d)
    if prefer == "future" and cand < today:
        return _safe_date(today.year + 1, m, d)
    return cand


def _year(y: str) -> int:
    n = int(y)
    return 2000 + n if n < 100 else n


@lru_cache(maxsize=4)
def _date_parser(today: date, prefer: str):
    """One DateDataParser per (day, preference): its RELATIVE_BASE is fixed at construction.
    Warmed here so the first customer does not pay dateparser's ~120 ms first call."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from dateparser.date import DateDataParser

        ddp = DateDataParser(
            languages=["fr", "ar"],
            settings={
                "DATE_ORDER": "DMY",
                "PREFER_DATES_FROM": prefer,
                "RELATIVE_BASE": datetime(today.year, today.month, today.day),
                "RETURN_TIME_AS_PERIOD": False,
            },
        )
        for warm in ("hier", "lundi", "il y a 3 jours"):
            ddp.get_date_data(warm)
    return ddp


@lru_cache(maxsize=1024)  # the phrases are few ("lundi", "il y a 3 jours"), a call ~1 ms
def _dateparser(phrase: str, today: date, prefer: str, periods=("day",)) -> date | None:
    try:
        ddp = _date_parser(today, prefer)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = ddp.get_date_data(phrase)
    except Exception:
        return None
    if data is None or data.date_obj is None or data.period not in periods:
        return None
    return data.date_obj.date()


def _find_date(norm: str, today: date, prefer: str = "past") -> tuple[date, tuple[int, int], bool] | None:
    """The first date named in normalised text, where it is (to keep its digits out of the index), and
    whether the preference chose it (a day without a year, a bare weekday)."""
    m = _ISO.search(norm)
    if m:
        d = _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        if d:
            return d, m.span(), False
    m = _DMY.search(norm)
    if m:
        d = _safe_date(_year(m.group(3)), int(m.group(2)), int(m.group(1)))
        if d:
            return d, m.span(), False
    m = _DAY_MONTH.search(norm)
    if m:
        day = 1 if m.group(1) in ("1er", "premier") else int(m.group(1))
        month = _MONTHS.get(_SPACES.sub(" ", m.group(2)))
        if month:
            d = _safe_date(int(m.group(3)), month, day) if m.group(3) else _resolve_year(day, month, today, prefer)
            if d:
                return d, m.span(), not m.group(3)
    m = _DM.search(norm)
    if m:
        d = _resolve_year(int(m.group(1)), int(m.group(2)), today, prefer)
        if d:
            return d, m.span(), True
    for offset, rx in _RELATIVE_RE:
        m = rx.search(norm)
        if m:
            return today + timedelta(days=offset), m.span(), False
    m = _AGO.search(norm)
    intro, count_word, unit = (m.group(1), m.group(2), m.group(3)) if m else (None, None, None)
    if m is None:
        m = _AGO_AFTER.search(norm)
        if m:
            count_word, unit = m.group(1), m.group(2)
    if m:
        count = _num(count_word)
        if unit in ("يومين",):
            count, unit = 2, "يوم"
        elif unit in ("اسبوعين",):
            count, unit = 2, "اسبوع"
        if count is None and intro is not None and _SPACES.sub(" ", intro) in _AGO_BARE_OK:
            count = 1 if unit in ("يوم", "اسبوع", "semaine") else None
        if count is not None and 0 < count <= 366:
            weeks = unit is not None and unit.startswith(("semaine", "اسبوع", "اسابيع", "simana"))  # (matched: set)
            phrase = f"il y a {count} {'semaines' if weeks else 'jours'}"
            d = _dateparser(phrase, today, prefer, periods=("day", "week"))
            if d:
                return d, m.span(), False
    m = _WEEKDAY_RE.search(norm)
    if m:
        fr = _NHAR_WEEKDAYS[m.group(1) or m.group(2)]
        qualifier = m.group(3) or ""
        if qualifier in ("prochain", "الجاي", "jay"):
            target = ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"].index(fr)
            ahead = (target - today.weekday()) % 7 or 7  # dateparser cannot read "lundi prochain"
            return today + timedelta(days=ahead), m.span(), False
        d = _dateparser(fr, today, "past" if qualifier else prefer)
        if d:
            return d, m.span(), not qualifier
    return None


def _bare_weekday(norm: str, span: tuple[int, int]) -> bool:
    m = _WEEKDAY_RE.search(norm)
    return bool(m and m.span() == span and not m.group(3))


def parse_date(text: str, lang: str | None = None, *, today: date, prefer: str = "past") -> date | None:
    """A date named in free text: ISO (YYYY-MM-DD), D/M/Y, D/M, "le 3 mai", "3 ماي", relative words
    (hier, البارح, lbare7, غدوة, ghedda, avant-hier, قبل البارح, بعد غدوة, اليوم, lyouma...),
    "il y a 3 jours", "قبل يومين", weekdays. A day and month without a year resolve to the past
    (a meter was read) unless prefer="future" (a promise to pay). `lang` is accepted for symmetry:
    customers mix languages, so every table is always tried."""
    try:
        found = _find_date(normalize(text)[:MAX_CHARS], today, "future" if prefer == "future" else "past")
    except Exception:
        return None
    return found[0] if found else None


# --------------------------------------------------------------------------- months (instalments)

_MONTH_UNITS = (
    r"mois|fois|mensualites?|echeances?|versements?|tranches?|months?|chhour|chhor|chhar|chher|"
    r"chhr|shhour|shour|chhoura|lchhour|chhourat|اشهر|الاشهر|شهور|الشهور|شهر|اقساط|قسطا|قسط|دفعات|مرات|شهرا|dfe3at|dfou3at|"
    r"marrat|merrat|mrat|mrrat|marat|المرات"
)
# "خمسة ديال الشهور", "arba3 d chhour", "khamsa dlchhour": a filler (of, the) between count and unit.
_MONTH_FILLER = r"(?:\s*(?:ديال\s*ال|ديال|دال|د\s*ال|د|dyal\s*l|dyal|dial|del|dl|d\s*l|d|de|des|les|l)\s*){0,2}"
# A glued Arabic preposition is not part of the number: "فجوج مرات", "فربعة ديال المرات".
_MONTHS_RE = re.compile(
    rf"(?<![\w.,'/-])(?:[فب](?=[^\W_])|ل(?=[^\W\d])|[fb](?=\d|j|t|r|a|k|s|z|w))?(\d{{1,3}}|{_NUM_ALT})\s*{_MONTH_FILLER}({_MONTH_UNITS})(?!\w)"
)
# "la facture de 2 mois", "jatni facture dyal 2 chhour mjmou3a": the months a bill covers, not a plan.
_BILL_BEFORE = re.compile(
    r"(?:(?:factur\w*|fatou?r\w*|فاتوره|الفاتوره)(?:\s+[^\W\d]+){0,2}?\s*(?:de|dyal|ديال|d)|"
    r"couvre\w*|تغطي|كتغطي|تخص|concerne\w*)\s*$"
)
_LUMPED = re.compile(r"d'un coup|mjmou3|مجموع|دفعه وا?حده")
_ONCE_UNITS = frozenset({"fois", "مرات", "marrat", "merrat", "mrat", "mrrat"})
# "sur 3 mois", "على خمسة أشهر", "f 4 chhour": a count asked as a plan, even in a message that
# also says the bill came lumped ("je ne peux pas la payer d'un coup, ... sur 3 mois").
_PLAN_BEFORE = re.compile(r"(?:sur|en|علي|f|fi|3la|b|ف|ب)\s*$")  # normalize() makes على علي
# Times ("3 fois", "جوج مرات") are a plan only when paying is asked for, not when it is told
# ("خلصت جوج مرات نفس الفاتورة") or when something else was tried ("3awdt 3 mrat").
_TWICE = frozenset({"مرتين", "mertin", "martin", "marrtin"})  # (دفعتين, "two payments", is a plan)
_PAY_ASKED = re.compile(
    r"payer|paie|regler|etaler|echelonn|nkhel|nkhal|nkhl|نخلص|ندفع|نأدي|نادي|اداء|دفع|تقسيط|قسط|khlas|t9sit|ta9sit"
)
_PAID_TOLD = re.compile(
    r"(?:خلصت|اديت|دفعت|طلبت)(?!ش)|(?:khlst|khlest|khallast|tlbt)(?!ch)|j'ai paye|j ai paye|deja paye|"
    r"3awdt|عاودت|jarrabt|جربت"
)
# "قسمها ليا على 4", "diviser en 3", "9smouha 3la 6": a split asked for, the count with no unit.
_SPLIT_ASKED = re.compile(r"قسم|تقسيط|9sm|qsm|t9sit|ta9sit|divis|partag|echelonn|etal")
_SPLIT_COUNT = re.compile(
    rf"(?:علي|en|3la|f|fi|sur)\s+(\d{{1,2}}|{_NUM_ALT})(?!\s*(?:\d|[.,]\d|%|dh|mad|درهم|dirham|jours?|يوم|ايام|semaines?|simana|h\b|heures?|ساع))(?!\w)"
)
# "3 mois impayés", "3 chhour ma khlesthomch": months owed, not the plan asked for.
_MONTHS_OWED = re.compile(
    r"\s*(?:d\s*)?(?:impayes?|non payes?|de retard|en retard|متاخره|ما خلصت|ma khlst|makhlst|bla khlas|"
    r"غير موداه|غير مدفوعه|gratuits?|مجانا|ما جا|ma ja|majach|و انا|وانا|o ana|wana)"
)
_MONTHS_NOT_COUNT = re.compile(
    r"(?:il\s+y\s+a|y\s+a|depuis|depuis\s+plus\s+de|منذ|من|هادي|hadi|ca\s+fait|fait|قبل|9bel|qbel|"
    r"lmoda\s+dyal|mn|متاخر|tkhrt|tkhart|t2khrt|retard\s+de|عندو|عندها|3ndo|3ando|"
    r"khdma\s+d|travail\s+de|stage\s+de|contrat\s+de)\s*$"
)
_MONTHS_X = re.compile(r"(?<!\w)(?:en|f|fi|b|3la|علي)\s*(\d{1,2})\s*x(?!\w)")  # "en 3x", "f 4x"
_DUAL_MONTHS = re.compile(
    r"(?<!\w)(?:[فبل]|علي\s*)?(شهرين|chehrin|chahrin|chhrin|مرتين|mertin|martin|marrtin|دفعتين|dfe3tin|dof3tin)(?!\w)"
)


def _months_in(norm: str) -> int | None:
    lumped = _LUMPED.search(norm)
    for m in _MONTHS_RE.finditer(norm):
        before = norm[max(0, m.start() - 24) : m.start()]
        if _MONTHS_NOT_COUNT.search(before):
            continue  # "il y a 3 mois", "depuis 2 mois": a duration, not an instalment count
        planned = bool(_PLAN_BEFORE.search(before)) or m.group(0)[0] in "فب"
        if (lumped and not (planned and lumped.end() <= m.start())) or _BILL_BEFORE.search(before):
            continue  # the months a bill covers
        n = _num(m.group(1))
        if _MONTHS_OWED.match(norm, m.end()):
            continue
        if n == 1 and m.group(2) in _ONCE_UNITS:
            continue  # "encore une fois", "une fois": once, not a one-month plan
        if m.group(2) in _ONCE_UNITS and not planned and (not _PAY_ASKED.search(norm) or _PAID_TOLD.search(norm)):
            continue
        if _PAID_TOLD.search(norm) and not _PAY_ASKED.search(_PAID_TOLD.sub(" ", norm)):
            continue  # "khlst 3la 6 chhour" last year: a plan told, not asked
        if m.group(2) == "fois" and re.match(r"\s*\d", norm[m.end() :]):
            continue  # "12 fois 8": arithmetic
        if n and 1 <= n <= 60:
            return n
    x = _MONTHS_X.search(norm)
    if x and 2 <= int(x.group(1)) <= 60:
        return int(x.group(1))
    dual = _DUAL_MONTHS.search(norm)
    if (
        dual
        and not lumped
        and not _MONTHS_NOT_COUNT.search(norm[max(0, dual.start() - 24) : dual.start()])
        and not _MONTHS_OWED.match(norm, dual.end())
        and not (dual.group(1) in _TWICE and (_PAID_TOLD.search(norm) or not _PAY_ASKED.search(norm)))
    ):
        return 2  # ("أديت نفس الفاتورة مرتين", "انقطع التيار مرتين": times, no plan)
    if _SPLIT_ASKED.search(norm) and not lumped:
        split = _SPLIT_COUNT.search(norm)
        n = _num(split.group(1)) if split else None
        if n and 2 <= n <= 60:
            return n
    return None


def parse_months(text: str) -> int | None:
    """An instalment count: "6 mois", "f 6 chhour", "على 3 أشهر", "en 3 fois", "ستة أشهر", "شهرين",
    or a bare number / number word (answer to "in how many months?"). 1..60, else None."""
    try:
        norm = normalize(text)[:MAX_CHARS]
        n = _months_in(norm)
        if n:
            return n
        bare = norm.strip(" .!?,;:()")
        bare = re.sub(r"^(?:sur|en|علي|f|fi|3la|b)\s+", "", bare)
        n = _num(bare)
        return n if n and 1 <= n <= 60 else None
    except Exception:
        return None


# --------------------------------------------------------------------------- index

_NUMBER = re.compile(r"(?<![\w.,'/-])(\d{1,3}(?:(?:[ .,']|, )\d{3})+|\d+)(?:[.,](\d{1,2}))?(?![\w'/]|[.,]\d)")
_NOT_INDEX_AFTER = re.compile(
    r"\s*(?:%|dh|dhs|mad|dirhams?|درهم|دراهم|rial|ryal|ريال|fois|mois|ans?|annees?|"
    r"jours?|semaines?|heures?|h\b|min|minutes?|" + _MONTH_UNITS + r"|ايام|يوم|سنه|سنين|"
    r"iyam|ayam|dqayq|دقايق|ساعه|ساعات|eme|er\b|ere\b|x\b|"
    r"factures?|fatoras?|fatouras?|factura|facturat|fatura|فواتير|فاتورات|فاتوره|bills?)",
    re.UNICODE,
)
_NOT_INDEX_BEFORE = re.compile(
    r"(?:sur|en|علي|f|fi|3la|il y a|depuis|منذ|قبل|hadi|هادي|le|nhar|نهار|a|au|"
    r"à|vers|avant|apres|من|mn|ل|l|الساعه|ساعه|lsa3a|sa3a|heure|l'heure)\s*$"
)
# A quantity of energy or water ("daz 150 kwh" in a complaint) is not an index, unless it is
# called one ("l'index 45123 kwh").
_UNIT_AFTER = re.compile(r"\s*(?:kwh|kw|kilowatts?|كيلواط|كيلو|ك و س|m3|متر مكعب|mitro)(?!\w)")
# A word (two letters or more, any script) and a letter: also how the engine and the learning
# loop tell a message that says something from a bare number or an emoji.
WORD = re.compile(r"[^\W\d_]{2,}")
_CONSUMPTION = re.compile(r"daz|jaz|fat|consomm|استهلاك|استهلكت|stahlak|tranche|شطر|depasse|فات")
LETTER = re.compile(r"[^\W\d_]")
_AMOUNT_BEFORE = re.compile(r"(?:credit|lcredit|solde|رصيد|الرصيد|avance|montant|المبلغ|dh|dhs|mad|prix)\s*[:=]?\s*$")
_INDEX_KEY = re.compile(
    r"(?:index|indexe|releve|compteur|affiche|chiffre|الرقم|الموشر|موشر|العداد|الكونطور|قراءه|lhsab|"
    r"hsab|fih|فيه|كان|kan|howa|هو|c'est|est|:)\s*$"
)
_SEPARATORS = re.compile(r"[ .,']")
# A tariff band's bound ("la tranche 150", "الشطر 150", "daz 150", "depasse 100") is no index.
_BAND_BEFORE = re.compile(
    r"(?:tranches?|palier|seuil|الشطر|شطر|الاشطر|depasse|daz|dazt|fat|fatt|تجاوز|تجاوزت|فات|فاتت)"
    r"\s*(?:de|des|du|dyal|dial|d|ديال|ta3|تاع)?\s*$"
)


def _mask(s: str, spans) -> str:
    for a, b in spans:
        s = s[:a] + " " * (b - a) + s[b:]
    return s


def _index_in(norm: str, exclude=()) -> int | None:
    spans = list(exclude)
    spans += [m.span() for m in _REFERENCE.finditer(norm)]
    spans += [m.span() for m in _PHONE.finditer(norm)]
    spans += [m.span() for m in re.finditer(r"(?<!\d)\d{1,2}\s?[h:]\s?\d{2}(?!\d)", norm)]  # 15h30, 10:30
    spans += [m.span() for rx in (_ISO, _DMY, _DM) for m in rx.finditer(norm)]  # even an invalid 31/02
    s = _mask(norm, spans)
    found: list[tuple[int, bool]] = []
    for m in _NUMBER.finditer(s):
        after = s[m.end() : m.end() + 12]
        if _NOT_INDEX_AFTER.match(after):
            continue
        digits = _SEPARATORS.sub("", m.group(1))
        if len(digits) > 9:
            continue
        before = s[max(0, m.start() - 12) : m.start()]
        if _AMOUNT_BEFORE.search(before):
            continue  # "crédit 0", "montant 350": money, not a meter
        keyed = bool(_INDEX_KEY.search(before))
        if not keyed and len(digits) <= 3 and _BAND_BEFORE.search(before):
            continue
        if not keyed and _UNIT_AFTER.match(after) and (int(digits) < 1000 or _CONSUMPTION.search(norm)):
            continue
        if not keyed and len(digits) <= 2 and (_NOT_INDEX_BEFORE.search(before) or LETTER.search(s)):
            continue  # "le 3", "f 6", "les 3 derniers mois": a day or a count, not a meter
        if not keyed and len(digits) == 4 and 1990 <= int(digits) <= 2039:
            continue  # "la facture de 2021": a year, unless it is called the index
        found.append((int(digits), keyed))
    values = {v for v, _ in found}
    if len(values) == 1:
        return values.pop()
    keyed_values = {v for v, k in found if k}
    return keyed_values.pop() if len(keyed_values) == 1 else None


def parse_index(text: str, *, today: date) -> int | None:
    """A meter index from free text: "12 345", "12.345", "12'345", "١٢٣٤٥", "٤٥ ١٢٣", "index 04512"
    -> 4512, "4512,7" -> 4512 (the red decimal drum is dropped). Dates, phone numbers, request
    references, contract numbers, amounts and counts are not indexes. None when there is no
    number or several candidates."""
    try:
        norm = normalize(text)[:MAX_CHARS]
        spans = []
        d = _find_date(norm, today)
        if d:
            spans.append(d[1])
        c = _contract_in(norm)
        if c and _CONTRACT_KEYED.search(norm):
            spans.append(c[1])
        return _index_in(norm, spans)
    except Exception:
        return None


# --------------------------------------------------------------------------- yes / no


def _phrase_set(s: str) -> frozenset[str]:
    return frozenset(normalize(p) for p in s.split("|"))


_YES = _phrase_set(
    "oui|ouii|ouais|ok|okay|okey|oki|d'accord|daccord|dac|parfait|yes|yep|bien sur|bien sûr|"
    "c'est ça|exactement|نعم|ايه|ايوا|أيوه|اه|آه|واخا|وخا|موافق|صحيح|eh|ah|wakha|waha|wah|"
    "iyeh|iyah|ayeh|ih|aywa|naam|na3am|eyh|oui oui|ok d'accord|واخا صافي|ewa|iwa|waxa|eyeh|iyeh|c'est bon|"
    "ah wakha|oui bien sur|oui c'est ca|oui merci|ok merci|vas y|allez y|ايه نعم|اه واخا|ابيه|نعم اكيد"
)
_NO = _phrase_set(
    "non|nn|no|nope|non merci|pas du tout|jamais|لا|لالا|لا لا|لا شكرا|ابدا|ماشي|لا ماشي|"
    "la|lla|lala|la la|machi|la merci|la chokran|la shokran|non non|ما بغيتش|ma bghitch|laa|pas besoin|"
    "pas la peine|non pas besoin|non c'est bon|la safi|لا صافي|mabghitch|la mabghitch|machi daba|"
    "ماشي دابا|لا ما بغيتش|non pas maintenant|pas maintenant|la machi daba|non ca va"
)
# Words that answer yes or no alone or together ("ah wakha", "la la safi"); "safi" (ok / enough)
# only rides along: alone it is not a yes, and the global words treat it as "enough".
_YES_WORDS = _phrase_set(
    "oui|ouais|ok|okay|yes|ah|eh|iyeh|iyah|ayeh|eyeh|ewa|iwa|wakha|waxa|waha|wah|aywa|naam|"
    "na3am|نعم|ايه|اه|واخا|وخا|ايوا|ايوه|موافق|parfait|exactement|dac|daccord|volontiers"
)
_NO_WORDS = _phrase_set("non|nn|no|nope|la|lla|laa|لا|لالا|machi|ماشي|jamais|ابدا|mabghitch")
_YES_NO_FILLER = _phrase_set(
    "safi|صافي|merci|chokran|choukran|shokran|شكرا|svp|stp|3afak|afak|عافاك|khouya|khoya|"
    "خويا|a|ya|sidi|madame|monsieur|bien|sur|بزاف|bzaf"
)
_POLITE = re.compile(
    r"(?<!\w)(?:merci|svp|stp|s'il vous plait|3afak|afak|عافاك|شكرا|choukran|chokran|"
    r"beaucoup|bzaf|بزاف)(?!\w)"
)
_YES_EMOJI = ("\U0001f44d", "\u2705", "\U0001f44c", "\u2714")
_NO_EMOJI = ("\U0001f44e", "\u274c", "\u274e", "\U0001f6ab")


def parse_yes_no(text: str) -> bool | None:
    """True/False for a yes or no written in words (oui, واخا, wakha, ايه, لا, non merci...) or a
    thumbs emoji; None for anything else, including digits ("1" is a menu choice, not a yes)."""
    try:
        if not isinstance(text, str):
            return None
        head = text[:60]
        if any(e in head for e in _YES_EMOJI) and not any(e in head for e in _NO_EMOJI) and not re.search(r"\w", head):
            return True
        if any(e in head for e in _NO_EMOJI) and not re.search(r"\w", head):
            return False
        norm = normalize(head)
        spaced = re.sub(r"[^\w' ]+", " ", norm)
        core = _SPACES.sub(" ", spaced).strip()
        if core in _NO:
            return False
        if core in _YES:
            return True
        stripped = _SPACES.sub(" ", _POLITE.sub(" ", core)).strip()
        if stripped in _NO or (
            core.startswith(("non ", "la ", "لا "))
            and not stripped.replace("non", "").replace("la", "").replace("لا", "").strip()
        ):
            return False
        if stripped in _YES:
            return True
        words = core.split()
        short = bool(words) and len(words) <= 4
        if short and all(w in _YES_WORDS or w in _YES_NO_FILLER for w in words) and any(w in _YES_WORDS for w in words):
            return True
        if short and all(w in _NO_WORDS or w in _YES_NO_FILLER for w in words) and any(w in _NO_WORDS for w in words):
            return False
        return None
    except Exception:
        return None


_NO_PHOTO = re.compile(
    r"(?<!\w)(?:bla|bila|bela|sans|pas de|pas d'|ma 3ndich|ma3ndich|ma3endich|makaynach|makaynch|ma kaynach|"
    r"n'ai pas de|j'ai pas de|بلا|بدون|ما عنديش|ماعنديش|ماكايناش|ما كايناش|ما عندي|ماعندي)\s*"
    r"(?:(?:la|l|ال)\s*)?(?:tswira|tswera|tsswira|tsawer|tsawr|sora|soura|photo|photos|image|صوره|تصويره|تصاور|صور)(?!\w)"
)


def parse_no_photo(text: str) -> bool:
    """The customer says they send no photo ("bla tswira", "بلا صورة", "sans photo")."""
    try:
        return bool(_NO_PHOTO.search(normalize(text)[:MAX_CHARS]))
    except Exception:
        return False


_ORDINALS: dict[str, int] = {}
for _position, _words in enumerate(
    [
        "premier premiere 1er 1ere first الاول الاولي اول اولي لول اللول لولا اللولا lowel lowla louwel lawel owel "
        "l'owel l'oula loula lwla",
        "deuxieme second seconde 2e 2eme الثاني الثانيه ثاني التاني التانيه تاني تانيه tani tania "
        "tanya ttani ttania tanye",
        "troisieme 3e 3eme third الثالث الثالثه ثالث التالت التالته تالت talet talta tal3 ttalet",
        "quatrieme 4e 4eme fourth الرابع الرابعه رابع rab3 rabe3 rab3a",
    ],
    start=1,
):
    for _w in _words.split():
        _ORDINALS[normalize(_w)] = _position
for _w in [
    "dernier",
    "derniere",
    "last",
    "الاخير",
    "الاخيره",
    "اللخر",
    "اللخره",
    "lakher",
    "lakhra",
    "lekher",
    "lekhra",
    "lkher",
]:
    _ORDINALS[normalize(_w)] = -1
_ORDINAL_FILLER = _phrase_set(
    "le|la|l|the|one|celui|celle|ci|la|dyal|choix|option|contrat|compteur|hada|hadi|"
    "هادا|هادي|هذا|هذه|je|veux|prends|choisis|bghit|baghi|الخيار|الاختيار|numero|n"
)


def parse_ordinal(text: str) -> int | None:
    """A position named in words: 1 for "le premier", "الأول", "lowel", "the first one"; 2 for
    "deuxième", "le 2e", "التاني", "tani"...; -1 for the last ("dernier", "الأخير", "lakher")."""
    if text.isascii() and not any(c.isalpha() for c in text):
        return None  # every ordinal has a letter ("2e"): a typed index at the menu is none
    try:
        norm = normalize(text)[:60]
        words = [w for w in re.sub(r"[^\w' ]+", " ", norm).replace("'", " ' ").split() if w != "'"]
        glued = " ".join(w for w in words if w not in _ORDINAL_FILLER)
        if glued in _ORDINALS:
            return _ORDINALS[glued]
        kept = [w for w in words if w not in _ORDINAL_FILLER]
        joined = "".join(kept)
        if joined in _ORDINALS:
            return _ORDINALS[joined]
        return None
    except Exception:
        return None


# --------------------------------------------------------------------------- intent

_BARE_NUMBER = re.compile(r"^[\s#:]*(?:n°|no)?[\s#:]*(\d{1,3}(?:[ .,']\d{3})+|\d+)(?:[.,]\d{1,2})?[\s.!]*$")


def _scores(norm: str, tokens: list[str]) -> dict[str, float]:
    scores: dict[str, float] = {}
    seen: set[str] = set()
    for tok in tokens[:120]:
        if tok in seen:
            continue
        seen.add(tok)
        if tok.isdigit():
            continue
        for intent, w in _lookup(tok):
            scores[intent] = scores.get(intent, 0.0) + w
    for first, source, intent, w in _PHRASE_RES:
        if first in seen and _phrase_re(source).search(norm):
            scores[intent] = scores.get(intent, 0.0) + w
    return scores


def _target_language(norm: str, tokens: list[str]) -> str | None:
    fr = any(
        t
        in ("francais", "francaise", "fransawiya", "lfransawiya", "fransawia", "الفرنسيه", "بالفرنسيه", "فرنسيه", "fr")
        for t in tokens
    )
    ar = any(
        t
        in (
            "arabe",
            "arabic",
            "عربيه",
            "العربيه",
            "بالعربيه",
            "الدارجه",
            "بالدارجه",
            "darija",
            "ddarija",
            "l3arbiya",
            "3arbiya",
        )
        for t in tokens
    )
    if fr == ar:
        return None
    target = "fr" if fr else "ar"
    if re.search(r"(?<!\w)(?:ne comprends pas|comprends pas|kanfhemch|ma kanfhemch|ما كنفهمش|لا افهم)(?!\w)", norm):
        target = "ar" if target == "fr" else "fr"
    return target


# Two requests read in one message ("je veux payer ... en 3 fois": the balance, or a plan?): the
# second is named when its evidence is at least this share of the first's.
COMPETING_SHARE = 0.6
COMPETING_BELOW = 0.7  # the model's probability under which two competing requests are asked about (right ~60 % there)
RULES_HESITATE_BELOW = 0.65  # the rules' confidence under which they do
RUNNER_UP_FROM = 0.25  # ... when the second one is at least this likely
# When the rules hesitate between two requests and the model's first two are the same two, the
# bot asks with the first under this probability and the second at least TWO_ASKED_FROM:
# "chhal 3liya w fin lwakala" (0.74 / 0.22). A model trained on more rows is surer of one of
# two requests than the neck-and-neck gate above lets through (understanding 4).
TWO_ASKED_BELOW = 0.9
TWO_ASKED_FROM = 0.15
# Under this probability the model does not override a request the rules read (measured on the
# messages the rules were never tuned to: as many right either way, python -m
# conversations.train_intents --select; the rules' reading is the documented one).
MODEL_UNSURE = 0.5
_TASKS = frozenset({"reading", "balance", "deferral", "prepaid", "track", "agent", "agency"})


def _competing(scores: dict[str, float], intent: str) -> str | None:
    """The other task the message also asks for, when the rules' evidence for it (the scores
    `_classify` decided on) comes close to the winner's; None when one request stands out."""
    top = scores.get(intent, 0.0)
    if intent not in _TASKS or top <= 0:
        return None
    rivals = [(v, k) for k, v in scores.items() if k in _TASKS and k != intent and v >= MIN_SCORE]
    if not rivals:
        return None
    best, name = max(rivals)
    return name if best >= COMPETING_SHARE * top else None


def _classify(raw: str, norm: str, tokens: list[str], entities: dict) -> tuple[str, float, dict[str, float]]:
    """Intent, confidence, and the evidence per intent they were read from (empty for a command
    or a bare number)."""
    stripped = raw.strip()
    if stripped.startswith("/"):
        # "/start@AddadBot payload": the command is the first word, without the bot's name.
        words = stripped[1:].split(maxsplit=1)
        cmd = words[0].split("@")[0].casefold() if words else ""
        if cmd in _SLASH_COMMANDS:
            return _SLASH_COMMANDS[cmd], 1.0, {}
    if "index" in entities and _BARE_NUMBER.match(norm):
        return "reading", 0.9 if entities["index"] >= 100 else 0.5, {}  # "1", "12": more likely a menu choice
    if "reference" in entities and len(tokens) <= 4 and not _scores(norm, tokens):
        return "track", 0.9, {}
    scores = _scores(norm, tokens)
    if "index" in entities:
        scores["reading"] = scores.get("reading", 0.0) + 1.5
    if "reference" in entities:
        scores["track"] = scores.get("track", 0.0) + 3.0
    if "months" in entities:
        # "nkhelles f 4 chhour": paying over months is a facility, not the balance ("pay" alone).
        scores["deferral"] = scores.get("deferral", 0.0) + 1.5 + (scores.get("balance", 0.0) if scores else 0.0)
    if not scores:
        return "unknown", 0.0, {}
    # Social words never beat a task: "salam, bghit nkhelles" is about paying.
    tasks = {k: v for k, v in scores.items() if k not in ("greeting",) and v >= MIN_SCORE}
    pool = tasks or scores
    ranked = sorted(pool.items(), key=lambda kv: (-kv[1], _PRIORITY.get(kv[0], 99)))
    intent, top = ranked[0]
    if top < MIN_SCORE:
        return "unknown", round(min(0.4, top / 5), 2), scores
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    confidence = min(1.0, top / 3.0) * (top / (top + second))
    return intent, round(max(0.05, min(1.0, confidence)), 2), scores


# "My consumption" (the 13-month chart, conversations/journeys/usage.py): a request the trained
# model has no class for (its intents are INTENTS, owned with its training data), read by these
# phrases alone, on the normalised text. Not when the message gives an index or a reference, asks
# to send or pay something, or asks for another task outright: those stay theirs.
RULE_INTENTS = ("consumption",)
_CONSUMPTION_ASKED = re.compile(
    r"(?<!\w)(?:"
    r"(?:ma|mes|notre|nos|mon) conso(?:mmation)?s?"
    r"|(?:historique|evolution|graphique|graphe|courbe|suivi)(?: de| des| d'| du)? ?(?:ma |mes |la )?"
    r"conso(?:mmation)?s?"
    r"|combien (?:j'ai|jai|ai-je|ai je) consomme"
    r"|(?:chhal|ch?hal|kam|9adech|qadech) (?:stahlakt|stahlkt|stehlekt|sthlakt|stahlekt|stehlakt|consomit|konsomit)"
    r"|(?:l'?|el ?|l ?)?i?stihlak (?:dyal|dial|diyal)(?:i|na)"
    r"|(?:شحال|كم|قداش|قديش) (?:استهلكت|ستهلكت|استهلكنا)"
    r"|استهلاكي|استهلاكنا"
    r"|(?:ال)?استهلاك (?:ديالي|ديالنا|متاعي|الخاص بي)"
    r"|(?:سجل|تطور|تاريخ|مبيان) (?:ال)?استهلاك"
    r")(?!\w)"
)
_SEND_ASKED = re.compile(
    r"(?<!\w)(?:envoy|transmet|donner|declar|sift|nsift|saft|n3ti|index|compteur"
    r"|pay|paie|regl|nkhell|khell|factur|cout|prix|montant)"
    r"|العداد|عداد|ارسل|نرسل|صيفط|بعث|تسجيل|نسجل|فاتور|خلص|اداء|ادفع|ندفع|مبلغ|ثمن"  # (after any prefix: و ال ب)
)
_CONSUMPTION_RIVAL = 2.5  # another task this sure (several of its words) keeps the message


def _consumption_asked(norm: str, entities: dict, evidence: dict[str, float]) -> bool:
    if not _CONSUMPTION_ASKED.search(norm) or _SEND_ASKED.search(norm):
        return False
    if entities.keys() & {"index", "reference", "months"}:
        return False
    return all(v < _CONSUMPTION_RIVAL for k, v in evidence.items() if k in _TASKS)


def understand(text: str, lang_hint: str | None = None, *, today: date) -> Understood:
    """Intent, language and entities of one customer message. Never raises."""
    try:
        return _understand(text, lang_hint, today=today)
    except Exception:  # a strange message must get an answer, not a crash; the bug is logged
        import logging  # (here: `addad understand` starts without it)

        logging.getLogger(__name__).exception(
            "understanding failed on a %d-char message", len(text) if isinstance(text, str) else -1
        )
        return Understood("unknown", _hint(lang_hint) or "ar", {}, 0.0)


def rules_only(text: str, lang_hint: str | None = None, *, today: date) -> Understood:
    """What the rules alone read (no trained model): what the model's stacker is trained on."""
    return _understand(text, lang_hint, today=today, model=False)


# Issue 24: "is Lydec (ONEE, Redal…) still my operator?" A previous operator named with a word of
# "still / over / changed / who": help with entities["topic"] = "transition" (the profile's
# explanation, conversations/journeys/menu.py). Both parts are required: high precision, and the
# shipped intent model is not retrained for it.
_OLD_OPERATOR = (
    r"(?:l'?|la |el |al )?(?:lydec|lydek|lidec|lydic|redal|amendis|radee[a-z]{0,2}|regie|onee|onep|"
    r"ليديك|ليدك|ليدیك|ريضال|رضال|امانديس|أمانديس|الوكالة المستقلة|المكتب الوطني(?: للكهرباء)?|لاراديج|الراديج)"
)
_STILL_OR_OVER = (
    r"(?:mazal|mazala|mazalin|baqi|baqa|ba9i|encore|toujours|fini|finie|termine|terminee|remplace|remplacee|"
    r"change|changee|disparu|existe|n'existe|plus la|plus mon|bdl|bdlat|tbdel|tbdlat|tbdl|wllat|welat|"
    r"chkoun|chkon|qui est|c'est qui|c est qui|"
    r"مازال|مازالت|باقي|باقا|باقية|سالات|تبدل|تبدلات|بدلات|تغير|ولات|شكون|من هي|انتهى|انتهت)"
)
_TRANSITION = re.compile(
    rf"(?<!\w){_OLD_OPERATOR}(?!\w).{{0,40}}(?<!\w){_STILL_OR_OVER}(?!\w)"
    rf"|(?<!\w)(?:mazal|baqi|chkoun|qui est|c'est qui|مازال|باقي|شكون)(?!\w).{{0,25}}(?<!\w){_OLD_OPERATOR}(?!\w)"
)


# Issue 24: connection and subscription requests, done at the agencies: entities["topic"] =
# "connection" (a new meter) or "transfer" (a subscription taken over), whatever the intent
# (customers' words for them are labelled `agent`, or `track` when they ask where one stands).
_CONNECTION = re.compile(
    r"(?<!\w)(?:(?:un |le |mon )?nouveau (?:compteur|branchement)|branchement|raccordement|nouvel abonnement|"
    r"(?:compteur|conteur|lcompteur|kontor|l?kontour) (?:jdid|jdida|jdide)|(?:nrekkeb|nrkkeb|nrakkeb|nrkeb|"
    r"trekkeb|terkib|tarkib) (?:l ?|el ?)?(?:compteur|conteur|kontor|kontour|l?3ddad|3adad)|"
    r"تركيب (?:ال)?عداد|عداد جديد|كونتور جديد|ربط جديد|الربط ب(?:ال)?(?:شبكة|كهرباء|ماء)|اشتراك جديد)(?!\w)"
)
_TRANSFER = re.compile(
    r"(?<!\w)(?:mutation|changement de (?:titulaire|nom|proprietaire)|changer (?:le|de) (?:nom|titulaire)|"
    r"transf[eé]r(?:t|er)? (?:d'|de |l'|mon |du )?(?:l'|le )?(?:abonnement|contrat|compteur)|"
    r"(?:nbeddel|nbdl|nbedel|tbdil|tbddel|nbdel|bdl|bddel) (?:s?smiya|l?ism|smia|smya|l?essmiya)|"
    r"(?:نبدل|تبديل|تغيير|نغير|نقل|تحويل) (?:ال)?(?:سمية|اسم|الإسم|الاشتراك|اشتراك|العقد))(?!\w)"
)


# An index typed in groups of three ("45 400", "45.400", "1 045 400"): the fast path's too.
_GROUPED_DIGITS = re.compile(r"[0-9]{1,3}(?:[ .][0-9]{3})+")


def _bare_digits(raw: str, hint: str | None, today: date) -> Understood | None:
    """A text of ASCII digits alone ("45400", the index typed at its step), or in groups of three
    ("45 400", "45.400"): what the full path reads, without the phrase rules and the model that
    cannot match it (no letter, no sign). None (the full path decides) when it holds a date, a
    phone number or too many digits. tests/test_understanding_fast.py compares it with the full
    path over many such texts."""
    if len(raw) > 9 + 3 * (" " in raw or "." in raw) or _find_date(raw, today):
        return None
    index = _index_in(raw)
    if index is None:
        return None
    confidence = 0.9 if index >= 100 else 0.5  # as _classify: "1", "12" more likely a menu choice
    return Understood("reading", _detect(raw, raw, [raw], hint), {"index": index}, confidence, "rules")


def _understand(
    text, lang_hint: str | None = None, *, today: date, model: bool = True, fast: bool = True
) -> Understood:
    hint = _hint(lang_hint)
    raw = text if isinstance(text, str) else ("" if text is None else str(text))
    raw = raw[:MAX_CHARS]
    if fast and raw.isascii() and (raw.isdigit() or _GROUPED_DIGITS.fullmatch(raw)):
        bare = _bare_digits(raw, hint, today)
        if bare is not None:
            return bare
    norm = normalize(raw)
    tokens = _tokens(norm)
    lang = _detect(raw, norm, tokens, hint)
    entities: dict = {}
    ref = _REFERENCE.search(norm)
    if ref:
        entities["reference"] = f"{ref.group(1).upper()}-{ref.group(2)}-{int(ref.group(3)):06d}"
    spans = []
    contract = _contract_in(norm)
    if contract:
        entities["contract"] = contract[0]
        spans.append(contract[1])
    months = _months_in(norm)
    if months:
        entities["months"] = months
    found = _find_date(norm, today) if re.search(r"\d|[^\W\d_]{3}", norm) else None
    if found:
        spans.append(found[1])
    index = _index_in(norm, spans)
    if index is not None:
        entities["index"] = index
    service = _service_in(tokens)
    if service:
        entities["service"] = service
    if _TRANSITION.search(norm) and not raw.strip().startswith("/"):
        return Understood("help", lang, {**entities, "topic": "transition"}, 1.0, "rules")
    intent, confidence, evidence = _classify(raw, norm, tokens, entities)
    if _consumption_asked(norm, entities, evidence):
        intent, confidence, evidence = "consumption", 0.9, {}  # stands over the model, as a command does
    source, runner_up = "rules", None
    n_words = len(WORD.findall(norm))
    if model and n_words and (intent == "unknown" or evidence):
        # Not a command, a bare number or a reference alone: the trained model reads the words
        # (conversations/intent_model.py), unless it is unsure and the rules read a request.
        from .intent_model import predict

        guess, p, second, p2 = predict(raw)
        if intent != "unknown" and p < MODEL_UNSURE:
            if confidence < RULES_HESITATE_BELOW:  # the rules hesitate too: what else the words ask for
                other, q = (guess, p) if guess != intent else (second, p2)
                rival = other if q >= RUNNER_UP_FROM and {other, intent} <= _TASKS else None
                runner_up = _competing(evidence, intent) or rival
        else:
            if guess != intent:
                source = "model"  # the rules read something else (or nothing)
            read, hesitant = intent, confidence < RULES_HESITATE_BELOW
            intent, confidence = guess, round(p, 2)
            if intent in _TASKS and second in _TASKS and p < COMPETING_BELOW and p2 >= RUNNER_UP_FROM:
                runner_up = second  # two requests neck and neck: the bot asks which
            elif intent in _TASKS and second in _TASKS and _names_only_contract(norm, contract):
                runner_up = second  # a contract number alone: whatever the model leans to, asked
            elif (
                hesitant
                and p < TWO_ASKED_BELOW
                and p2 >= TWO_ASKED_FROM
                and {read, _competing(evidence, read)} == {intent, second}  # (both tasks: _competing's)
            ):
                runner_up = second  # the rules' two requests, the model's first two: asked
    elif not model:
        runner_up = _competing(evidence, intent) if confidence < RULES_HESITATE_BELOW else None
    if found and intent == "agency" and _bare_weekday(norm, found[1]):
        found = None  # "ouverts le samedi ?" asks about Saturdays, not one date
    if found:
        when = found[0]
        if found[2] and intent in ("deferral", "agency"):  # a promise to pay or a visit points forward
            again = _find_date(norm, today, "future")
            when = again[0] if again else when
        entities["date"] = when
    if not raw.strip().startswith("/"):
        topic = "transfer" if _TRANSFER.search(norm) else "connection" if _CONNECTION.search(norm) else None
        if topic:
            entities["topic"] = topic
    if intent == "language":
        target = _target_language(norm, tokens)
        if target:
            entities["language"] = target
    return Understood(intent, lang, entities, confidence, source, runner_up)


def warm_up(today: date) -> None:
    """Load dateparser, build today's parser and read the intent model now (start-up) rather than
    on a customer's message."""
    from .intent_model import _model

    _date_parser(today, "past")
    _model()


# --------------------------------------------------------------------------- command line


def _jsonable(entities: dict) -> dict:
    return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in entities.items()}


def understand_command(
    text: str | Iterable[str], lang: str | None, *, today: date, more: Callable[[str], dict] | None = None
) -> int:
    """`addad understand [--lang ar|fr] TEXT`: one JSON object on stdout; given lines (`addad
    understand -`, standard input), one object per line, in one process. Relative dates are read
    from `today` (the operator's day); `more(text)` adds entities known outside this module (the
    profile's cities)."""
    for line in [text] if isinstance(text, str) else text:
        message = line.rstrip("\r\n")
        u = understand(message, lang, today=today)
        entities = _jsonable(u.entities) | (more(message) if more else {})
        # The shape SPEC.md fixes, then how sure it is and what came second.
        out = {
            "intent": u.intent,
            "lang": u.lang,
            "entities": entities,
            "confidence": u.confidence,
            "source": u.source,
            "runner_up": u.runner_up,
        }
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
    sys.stdout.flush()
    return 0
