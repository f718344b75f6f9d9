"""What ``exchange demo`` seeds, as data: offices, agreements, patent families with their
members' numbers (each in its office's own format), the documents each office deposits, and
the ASPEC requests with the outcome each must get. :mod:`exchange.demo.seeder` turns it into API calls.
"""

from __future__ import annotations

from dataclasses import dataclass

ASEAN = ("BN", "ID", "KH", "LA", "MY", "PH", "SG", "TH", "VN")
OFFICES = {
    "SG": "Intellectual Property Office of Singapore",
    "MY": "Intellectual Property Corporation of Malaysia",
    "TH": "Department of Intellectual Property, Thailand",
    "VN": "Intellectual Property Office of Viet Nam",
    "ID": "Directorate General of Intellectual Property, Indonesia",
    "PH": "Intellectual Property Office of the Philippines",
    "BN": "Brunei Intellectual Property Office",
    "KH": "Department of Industrial Property, Cambodia",
    "LA": "Department of Intellectual Property, Lao PDR",
    "JP": "Japan Patent Office",
    "US": "United States Patent and Trademark Office",
    "EP": "European Patent Office",
    "AU": "IP Australia",
    "KR": "Korean Intellectual Property Office",
}
# Set with PATCH /v1/offices/{code}, as an administrator would. Thailand refuses written
# opinions as the only basis of an ASPEC request (also the exchange's default for TH).
OFFICE_SETTINGS = {
    "TH": {"aspec": {"accepts_written_opinion": False}},
    "ID": {"aspec": {"requires_cct": True}},
}
AGREEMENTS = [
    {"name": "ASEAN Patent Examination Co-operation", "program": "ASPEC", "members": list(ASEAN),
     "document_types": ["SR", "WO", "ER", "ISR", "WOISA", "IPRP", "CLAIMS", "CCT", "GRANT", "REFUSAL"],
     "valid_from": "2009-06-15T00:00:00Z", "require_corresponding": True, "share_unpublished": False},
    {"name": "CASE-style sharing of search and examination results", "program": "CASE",
     "members": ["AU", "EP", "JP", "KR", "US", "SG", "MY"],
     "document_types": ["SR", "WO", "ER", "ISR", "WOISA"], "valid_from": "2020-01-01T00:00:00Z",
     "require_corresponding": True, "share_unpublished": False},
]
# Office systems that listen for events; the demo's own receiver shows what arrives.
WEBHOOK_OFFICES = ("SG", "MY", "TH")


@dataclass(frozen=True)
class Cite:
    """A document cited in a search report: ST.14 category, the claims it concerns, where."""

    document: str
    category: str
    claims: tuple[int, ...]
    passage: str


@dataclass(frozen=True)
class Doc:
    """A document of a deposit. ``allowable`` is for reports: the claims found allowable."""

    id: str
    type: str
    allowable: tuple[int, ...] | None = None
    language: str = "en"
    translation_of: str | None = None


@dataclass(frozen=True)
class Deposit:
    issued_on: str
    documents: tuple[Doc, ...]


@dataclass(frozen=True)
class Member:
    """An office's application. ``claims`` names priority applications as "OFFICE NUMBER" (a
    member of the family or one of its first filings outside the exchange). Without deposits
    the application is only registered (POST /v1/applications)."""

    office: str
    number: str
    filed: str
    claims: tuple[str, ...] = ()
    pct: str | None = None
    published: tuple[str, str] | None = None
    deposits: tuple[Deposit, ...] = ()

    @property
    def ref(self) -> str:
        return f"{self.office} {self.number}"


@dataclass(frozen=True)
class Family:
    title: str
    ipc: tuple[str, ...]
    applicant: str
    claim_texts: tuple[str, ...]
    citations: tuple[Cite, ...]
    members: tuple[Member, ...]
    first_filings: tuple[tuple[str, str, str], ...] = ()  # (office, number, date) outside the exchange
    amendment: str = ""  # the feature an amended claim 1 adds, in the later claims

    def priority(self, ref: str) -> dict:
        for m in self.members:
            if m.ref == ref:
                return {"office": m.office, "number": m.number, "date": m.filed}
        for office, number, filed in self.first_filings:
            if f"{office} {number}" == ref:
                return {"office": office, "number": number, "date": filed}
        raise ValueError(f"{ref} is neither a member nor a first filing of the family {self.title!r}")


@dataclass(frozen=True)
class Request:
    """An ASPEC request by the second office (``so``) relying on documents of the first office's
    application (``fo``), and the outcome the exchange must give it. ``withdraw``: accepted,
    then withdrawn by the second office."""

    so: str
    fo: str
    relies: tuple[str, ...]
    status: str
    reasons: tuple[str, ...] = ()
    basis: str | None = None
    route: str = "ASPEC"
    claim_correspondence: tuple[tuple[int, int], ...] = ()
    withdraw: bool = False


SR, CLAIMS, GRANT = Doc("sr-1", "SR"), Doc("claims-1", "CLAIMS"), Doc("grant-1", "GRANT")

FAMILIES = [
    Family(
        title="System and method for the secure exchange of patent examination results between offices",
        ipc=("H04L 9/32", "G06Q 50/18"), applicant="Nusantara Ledger Sdn. Bhd.",
        amendment="wherein every access decision is recorded in a hash-chained audit log",
        claim_texts=(
            "A system for exchanging examination results between patent offices, comprising a repository that "
            "stores dossiers deposited by a first office, each dossier comprising a manifest signed with the first "
            "office's private key and the documents listed in the manifest with their digests.",
            "The system of claim 1, wherein the repository refuses a dossier whose signature does not verify "
            "against a public key registered for the first office at the time of signing.",
            "The system of claim 1 or 2, wherein the repository returns to the first office a receipt signed by the "
            "repository over the digest of the manifest.",
            "The system of any one of claims 1 to 3, further comprising an access policy that discloses a dossier "
            "to a second office only under an agreement in force between the two offices.",
            "The system of claim 4, wherein the access policy requires the second office to hold an application "
            "corresponding to the application of the dossier.",
            "The system of claim 4 or 5, wherein every access decision is recorded in a hash-chained audit log.",
            "A method of exchanging examination results, comprising receiving a signed manifest and documents from "
            "a first office, verifying the signature and the digests, storing the dossier, and disclosing it to a "
            "second office according to an agreement between the offices.",
            "The method of claim 7, further comprising notifying the second office by a signed webhook when the "
            "dossier becomes visible to it.",
        ),
        citations=(
            Cite("US 2019/0372345 A1", "X", (1, 7), "paragraphs [0031]-[0047], figures 2-4"),
            Cite("EP 3 561 712 A1", "Y", (2, 3), "column 6, line 12 - column 8, line 40"),
            Cite("WO 2020/156789 A1", "Y", (4, 5), "page 11, line 3 - page 14, line 22"),
            Cite("JP 2018-205123 A", "A", (6, 8), "whole document"),
        ),
        members=(
            Member("MY", "PI2022001234", "2022-03-02", published=("MY 196543 A", "2023-09-29"), deposits=(
                Deposit("2023-06-12", (SR, Doc("wo-1", "WO", (6, 8)), CLAIMS)),
                Deposit("2024-02-20", (Doc("er-1", "ER", (1, 2, 3, 4, 5, 6, 7, 8)), Doc("claims-2", "CLAIMS"))),
            )),
            Member("SG", "10202301234X", "2023-03-01", ("MY PI2022001234",),
                   published=("SG 10202301234X A", "2023-09-29")),
            Member("TH", "2301001234", "2023-03-01", ("MY PI2022001234",)),
            Member("JP", "2023-034567", "2023-03-01", ("MY PI2022001234",),
                   published=("JP 2023-140123 A", "2023-09-28")),
            Member("US", "18/115,234", "2023-02-28", ("MY PI2022001234",),
                   published=("US 2023/0281234 A1", "2023-09-07"), deposits=(
                       Deposit("2024-04-11", (Doc("er-1", "ER", (6, 8)), CLAIMS)),
                   )),
        ),
    ),
    Family(
        title="Silicon-carbon composite anode for lithium-ion batteries",
        ipc=("H01M 4/38", "H01M 4/134", "H01M 10/0525"), applicant="Shenzhen Greencell Technology Co., Ltd.",
        first_filings=(("CN", "202210123456.7", "2022-04-18"),),
        claim_texts=(
            "An anode for a lithium-ion battery, comprising a current collector and an active layer of silicon "
            "nanoparticles embedded in a porous carbon matrix, the silicon content of the active layer being 10 to "
            "40 per cent by weight.",
            "The anode of claim 1, wherein the silicon nanoparticles have a mean diameter of 50 to 150 nm.",
            "The anode of claim 1 or 2, wherein the carbon matrix is derived from pyrolysed lignin.",
            "The anode of any one of claims 1 to 3, wherein the active layer comprises alternating silicon-rich and "
            "carbon-rich sublayers.",
            "The anode of claim 4, wherein each sublayer is 0.5 to 2 micrometres thick.",
            "A lithium-ion battery comprising the anode of any one of claims 1 to 5.",
            "A method of making the anode of claim 1, comprising spray-coating a slurry of silicon nanoparticles "
            "and lignin onto the current collector and pyrolysing it at 700 to 900 degrees C under argon.",
        ),
        citations=(
            Cite("CN 110 459 123 A", "X", (1, 2, 6), "paragraphs [0015]-[0029], example 1"),
            Cite("US 2018/0269473 A1", "Y", (3, 7), "paragraphs [0042]-[0051]"),
            Cite("KR 10-2019-0087654 A", "A", (4, 5), "whole document"),
            Cite("Liu N. et al., Nature Nanotechnology 9 (2014) 187-192", "A", (1,), "section 2, figure 1"),
        ),
        members=(
            Member("MY", "PI2023002345", "2023-04-14", ("CN 202210123456.7",),
                   published=("MY 201877 A", "2023-10-31"), deposits=(
                       Deposit("2023-12-05", (SR, Doc("wo-1", "WO", (4, 5)), CLAIMS)),
                   )),
            Member("VN", "1-2023-01456", "2023-04-17", ("CN 202210123456.7",)),
            Member("TH", "2301002345", "2023-04-17", ("CN 202210123456.7",)),
            Member("ID", "P00202303456", "2023-04-17", ("CN 202210123456.7",)),
            Member("KR", "10-2023-0049876", "2023-04-17", ("CN 202210123456.7",),
                   published=("KR 10-2023-0152345 A", "2023-10-20"), deposits=(
                       Deposit("2023-11-20", (SR, Doc("er-1", "ER", (4, 5)))),
                   )),
        ),
    ),
    Family(
        title="Desalination membrane with a graphene oxide interlayer",
        ipc=("B01D 69/12", "B01D 71/02", "C02F 1/44"), applicant="Temasek Water Technologies Pte. Ltd.",
        claim_texts=(
            "A thin-film composite membrane for reverse osmosis, comprising a porous polysulfone support, a "
            "polyamide selective layer and, between them, an interlayer of graphene oxide nanosheets cross-linked "
            "with ethylenediamine.",
            "The membrane of claim 1, wherein the interlayer is 20 to 80 nm thick.",
            "The membrane of claim 1 or 2, wherein the graphene oxide nanosheets have a lateral size of 0.5 to 3 "
            "micrometres.",
            "The membrane of any one of claims 1 to 3, wherein the polyamide selective layer is formed by "
            "interfacial polymerisation of m-phenylenediamine and trimesoyl chloride on the interlayer.",
            "The membrane of any one of claims 1 to 4, having a water permeance of at least 4 L/(m2 h bar) and a "
            "NaCl rejection of at least 99.5 per cent.",
            "A method of making the membrane of claim 1, comprising vacuum-filtering a dispersion of graphene oxide "
            "onto the support, cross-linking it with ethylenediamine vapour, and forming the polyamide layer on it.",
        ),
        citations=(
            Cite("US 2017/0036171 A1", "A", (1, 4), "paragraphs [0008]-[0019]"),
            Cite("WO 2019/112512 A1", "A", (1, 6), "page 5, line 10 - page 9, line 2"),
            Cite("Xia S. et al., J. Membrane Sci. 473 (2015) 54-62", "A", (1, 2), "sections 2.2-3.1"),
        ),
        members=(
            # The international application, filed with IPOS as receiving office and searched by it as ISA.
            Member("SG", "PCT/SG2023/050123", "2023-03-20", pct="PCT/SG2023/050123",
                   published=("WO 2023/182345 A1", "2023-09-28"), deposits=(
                       Deposit("2023-07-14", (Doc("isr-1", "ISR"), Doc("woisa-1", "WOISA", (1, 2, 3, 4, 5, 6)),
                                              CLAIMS)),
                   )),
            Member("VN", "1-2025-04512", "2023-03-20", pct="PCT/SG2023/050123"),
            Member("PH", "1/2025/550321", "2023-03-20", pct="PCT/SG2023/050123"),
        ),
    ),
    Family(
        title="Rice polishing machine with optical grain sorting",
        ipc=("B02B 3/00", "B07C 5/342"), applicant="Kansai Grain Machinery Co., Ltd.",
        claim_texts=(
            "A rice polishing machine comprising a polishing chamber with an abrasive roll, a camera arranged "
            "downstream of the polishing chamber to image the polished grains, and an ejector controlled from the "
            "camera's images to remove broken or discoloured grains.",
            "The machine of claim 1, wherein the camera images the grains in near-infrared and visible light.",
            "The machine of claim 1 or 2, wherein the degree of milling in the polishing chamber is adjusted from "
            "the whiteness measured by the camera.",
            "The machine of any one of claims 1 to 3, wherein the ejector comprises an array of air nozzles.",
            "A method of polishing rice, comprising polishing the grains, imaging them, and ejecting the grains "
            "whose image departs from a reference.",
        ),
        citations=(
            Cite("JP 2015-123456 A", "X", (1, 4, 5), "paragraphs [0012]-[0030], figure 1"),
            Cite("US 2016/0354812 A1", "Y", (2,), "paragraph [0041]"),
            Cite("CN 106 000 123 A", "A", (3,), "whole document"),
        ),
        members=(
            Member("JP", "2022-123456", "2022-08-01", published=("JP 2024-012345 A", "2024-01-25"), deposits=(
                Deposit("2023-05-16", (SR, Doc("er-1", "ER", (3,)), CLAIMS)),
            )),
            # The international application: JPO as receiving office and ISA, not an ASEAN authority.
            Member("JP", "PCT/JP2023/028765", "2023-07-31", ("JP 2022-123456",), pct="PCT/JP2023/028765",
                   published=("WO 2024/029876 A1", "2024-02-08"), deposits=(
                       Deposit("2023-11-02", (Doc("isr-1", "ISR"), Doc("woisa-1", "WOISA", (3,)), CLAIMS)),
                   )),
            Member("MY", "PI2025000789", "2023-07-31", ("JP 2022-123456",), pct="PCT/JP2023/028765"),
            Member("TH", "2501000789", "2023-07-31", ("JP 2022-123456",), pct="PCT/JP2023/028765"),
            Member("US", "18/228,123", "2023-07-31", ("JP 2022-123456",),
                   published=("US 2024/0041234 A1", "2024-02-08"), deposits=(
                       Deposit("2024-09-12", (Doc("er-1", "ER", ()), CLAIMS)),
                   )),
        ),
    ),
    Family(
        title="Thermostable dengue vaccine formulation",
        ipc=("A61K 39/12", "A61K 47/26", "A61P 31/14"), applicant="Lion City Biologics Pte. Ltd.",
        amendment="further comprising recombinant gelatin and no human serum albumin",
        claim_texts=(
            "A lyophilised vaccine composition comprising a live attenuated tetravalent dengue virus, trehalose at "
            "5 to 15 per cent w/v before drying and a poloxamer, the composition retaining at least 80 per cent of "
            "its potency after 28 days at 37 degrees C.",
            "The composition of claim 1, wherein the poloxamer is poloxamer 407 at 0.01 to 0.1 per cent w/v.",
            "The composition of claim 1 or 2, further comprising recombinant gelatin and no human serum albumin.",
            "The composition of any one of claims 1 to 3, buffered at pH 7.0 to 7.6 with histidine.",
            "The composition of any one of claims 1 to 4 for use in the prevention of dengue fever.",
            "A method of making the composition of claim 1, comprising mixing the virus with the excipients and "
            "freeze-drying with a primary drying step at -30 degrees C.",
        ),
        citations=(
            Cite("WO 2016/106107 A2", "Y", (1, 5), "examples 2-4"),
            Cite("US 2014/0093532 A1", "Y", (2,), "paragraph [0056]"),
            Cite("EP 3 539 565 A1", "A", (3, 4, 6), "whole document"),
        ),
        members=(
            # Not yet published: partners see these reports only through an accepted ASPEC request.
            Member("SG", "10202505678W", "2025-06-10", deposits=(
                Deposit("2025-12-15", (SR, Doc("wo-1", "WO", (3, 4, 6)), CLAIMS)),
                Deposit("2026-07-20", (Doc("er-1", "ER", (1, 2, 3, 4, 5, 6)), Doc("claims-2", "CLAIMS"))),
            )),
            Member("MY", "PI2026003456", "2026-06-08", ("SG 10202505678W",)),
            Member("PH", "1/2026/050789", "2026-06-09", ("SG 10202505678W",)),
            Member("BN", "BN/N/2026/0042", "2026-06-09", ("SG 10202505678W",)),
        ),
    ),
    Family(
        title="Method for detecting basal stem rot in oil palm by sensing volatile organic compounds",
        ipc=("A01G 7/06", "G01N 33/0034"), applicant="PT Sawit Sensorindo",
        claim_texts=(
            "A method for detecting basal stem rot caused by Ganoderma boninense in an oil palm, comprising "
            "sampling the air at the base of the trunk, measuring volatile organic compounds in the sample with an "
            "array of metal-oxide gas sensors, and classifying the palm as infected when the sensor response "
            "pattern matches a reference pattern.",
            "The method of claim 1, wherein the classification uses a support vector machine trained on palms of "
            "known status.",
            "The method of claim 1 or 2, wherein the sample is drawn through a collar sealed around the trunk.",
            "The method of any one of claims 1 to 3, wherein the array comprises at least eight sensors.",
            "A device for carrying out the method of claim 1, comprising the collar, a pump, the sensor array and "
            "a processor.",
        ),
        citations=(
            Cite("MY 168765 A", "Y", (1, 5), "pages 4-7"),
            Cite("US 2020/0141234 A1", "Y", (2,), "paragraph [0033]"),
            Cite("Markom M.A. et al., Comput. Electron. Agric. 69 (2009) 153-160", "A", (1, 4), "section 3"),
        ),
        members=(
            # Indonesian reports: the search report comes with an English translation, the examination
            # report does not.
            Member("ID", "P00202200789", "2022-05-11", published=("ID P00202200789 A", "2023-11-17"), deposits=(
                Deposit("2023-08-21", (Doc("sr-1", "SR", language="id"),
                                       Doc("sr-1-en", "SR", translation_of="sr-1"))),
                Deposit("2024-03-18", (Doc("er-1", "ER", (3, 4), language="id"), CLAIMS)),
            )),
            Member("TH", "2301003789", "2023-05-10", ("ID P00202200789",)),
        ),
    ),
    Family(
        title="Liquid-cooled charging connector for electric motorcycles",
        ipc=("B60L 53/16", "B60L 53/302", "H01R 13/533"), applicant="Siam EV Components Co., Ltd.",
        claim_texts=(
            "A charging connector for an electric motorcycle, comprising a housing, power contacts held in the "
            "housing, and a coolant channel running through each power contact, the coolant channels being "
            "connected to a coolant inlet and outlet in the charging cable.",
            "The connector of claim 1, wherein the coolant is a dielectric liquid.",
            "The connector of claim 1 or 2, further comprising a temperature sensor in thermal contact with each "
            "power contact.",
            "The connector of claim 3, wherein the charging current is reduced when a sensor reports more than 90 "
            "degrees C.",
            "The connector of any one of claims 1 to 4, wherein the housing is sealed to IP67.",
            "A charging station comprising a coolant pump and the connector of any one of claims 1 to 5.",
        ),
        citations=(
            Cite("US 2019/0315234 A1", "Y", (1, 2, 6), "paragraphs [0025]-[0040]"),
            Cite("DE 10 2017 123 456 A1", "A", (3, 4), "paragraphs [0018]-[0022]"),
            Cite("JP 2020-078901 A", "A", (5,), "whole document"),
        ),
        members=(
            Member("TH", "2201004567", "2022-09-14", published=("TH 2201004567 A", "2023-06-30"), deposits=(
                Deposit("2023-09-20", (SR, Doc("er-1", "ER", (3, 4, 5)), CLAIMS)),
            )),
            # Malaysia examined it itself and granted it: an ASPEC request now comes too late.
            Member("MY", "PI2023005678", "2023-09-12", ("TH 2201004567",),
                   published=("MY 204512 A", "2024-03-29"), deposits=(
                       Deposit("2024-10-02", (SR, Doc("er-1", "ER", (1, 2, 3, 4, 5)), CLAIMS)),
                       Deposit("2025-03-04", (GRANT,)),
                   )),
            Member("VN", "1-2023-05678", "2023-09-13", ("TH 2201004567",)),
        ),
    ),
    Family(
        title="Halal gelatin substitute from tilapia skin collagen",
        ipc=("A23J 3/06", "A23L 29/281", "C09H 3/00"), applicant="Visayas Marine Biotech, Inc.",
        claim_texts=(
            "A process for producing a gelatin substitute, comprising soaking tilapia skins in 0.1 M sodium "
            "hydroxide, extracting collagen with 0.5 M acetic acid at 4 degrees C, and drying the extract.",
            "The process of claim 1, wherein the extraction lasts 24 to 72 hours.",
            "The process of claim 1 or 2, wherein the extract is spray-dried.",
            "A gelatin substitute obtained by the process of any one of claims 1 to 3.",
            "Use of the gelatin substitute of claim 4 in halal confectionery.",
        ),
        citations=(
            Cite("US 2011/0009876 A1", "X", (1, 2, 4), "examples 1 and 2"),
            Cite("CN 102 234 567 A", "X", (3, 5), "paragraphs [0010]-[0019]"),
            Cite("Zhang F. et al., Food Hydrocolloids 23 (2009) 1893-1899", "A", (1,), "section 2.1"),
        ),
        members=(
            Member("PH", "1/2022/050456", "2022-10-03", published=("PH 1/2022/050456 A", "2023-04-14"), deposits=(
                Deposit("2023-08-30", (SR, Doc("er-1", "ER", ()), CLAIMS)),
            )),
            Member("MY", "PI2023006789", "2023-10-02", ("PH 1/2022/050456",)),
        ),
    ),
    Family(
        title="Floating photovoltaic array with wave-damping pontoons",
        ipc=("H02S 20/30", "B63B 35/44"), applicant="Mekong Solar Engineering JSC",
        claim_texts=(
            "A floating photovoltaic array comprising pontoons carrying solar modules, the pontoons being joined by "
            "elastic couplings, and a peripheral ring of wave-damping pontoons having perforated vertical skirts.",
            "The array of claim 1, wherein the skirts have a porosity of 15 to 30 per cent.",
            "The array of claim 1 or 2, wherein the elastic couplings are rubber bushings.",
            "The array of any one of claims 1 to 3, wherein the solar modules are cooled by water sprayed from the "
            "pontoons.",
            "The array of any one of claims 1 to 4, moored by elastic lines to anchors on the reservoir bed.",
        ),
        citations=(
            Cite("CN 108 512 345 A", "Y", (1, 3, 5), "paragraphs [0020]-[0035]"),
            Cite("WO 2019/053567 A1", "A", (2,), "page 8, lines 1-25"),
            Cite("KR 10-1898765 B1", "A", (4,), "whole document"),
        ),
        members=(
            # Viet Nam deposited its reports but not the claims they examined.
            Member("VN", "1-2022-04321", "2022-11-08", published=("VN 1-2022-04321 A", "2023-05-25"), deposits=(
                Deposit("2023-10-16", (SR, Doc("er-1", "ER", (2, 4)))),
            )),
            Member("SG", "10202306123W", "2023-11-07", ("VN 1-2022-04321",)),
            Member("PH", "1/2023/050987", "2023-11-07", ("VN 1-2022-04321",)),
            Member("KH", "KH/P/2023/00021", "2023-11-07", ("VN 1-2022-04321",)),
        ),
    ),
    Family(
        title="Vertical-axis wind turbine blade with a morphing trailing edge",
        ipc=("F03D 3/06", "F03D 7/06"), applicant="Nordwind Rotor GmbH",
        first_filings=(("DE", "10 2021 123 456.7", "2021-09-06"),),
        claim_texts=(
            "A blade for a vertical-axis wind turbine, comprising a rigid main section and a flexible trailing-edge "
            "section whose camber is changed by an actuator during each revolution.",
            "The blade of claim 1, wherein the actuator is a shape-memory-alloy wire embedded in the trailing-edge "
            "section.",
            "The blade of claim 1 or 2, wherein the camber follows the azimuth angle of the blade.",
            "The blade of any one of claims 1 to 3, wherein the trailing-edge section is 15 to 25 per cent of the "
            "chord.",
            "A vertical-axis wind turbine comprising at least three blades according to any one of claims 1 to 4.",
        ),
        citations=(
            Cite("US 2012/0051234 A1", "X", (1, 5), "paragraphs [0030]-[0052], figures 3-6"),
            Cite("EP 2 924 123 A1", "A", (2,), "paragraph [0017]"),
            Cite("DE 10 2015 001 234 A1", "A", (3, 4), "whole document"),
        ),
        members=(
            Member("EP", "22193456.7", "2022-09-01", ("DE 10 2021 123 456.7",),
                   published=("EP 4 145 678 A1", "2023-03-08"), deposits=(
                       Deposit("2023-02-10", (SR, Doc("wo-1", "WO", (2, 3, 4)))),
                   )),
            # A priority chain: AU claims EP, which claims DE.
            Member("AU", "2023221234", "2023-08-25", ("EP 22193456.7",),
                   published=("AU 2023221234 A1", "2024-03-07"), deposits=(
                       Deposit("2024-06-12", (Doc("er-1", "ER", (2, 3, 4)), CLAIMS)),
                   )),
            Member("SG", "10202306789P", "2023-08-29", ("EP 22193456.7",),
                   published=("SG 10202306789P A", "2024-03-28")),
            Member("MY", "PI2023007890", "2023-08-30", ("EP 22193456.7",)),
        ),
    ),
    Family(
        title="Acoustic ripeness tester for durian",
        ipc=("G01N 29/12", "G01N 33/02"), applicant="Chanthaburi Agritech Co., Ltd.",
        claim_texts=(
            "A device for testing the ripeness of a durian, comprising a striker that taps the husk, a microphone "
            "that records the response, and a processor that estimates ripeness from the dominant resonant "
            "frequency of the response.",
            "The device of claim 1, wherein the striker is a solenoid-driven plunger with a rubber tip.",
            "The device of claim 1 or 2, wherein the processor also uses the damping of the response.",
            "The device of any one of claims 1 to 3, being hand-held and battery-powered.",
            "A method of grading durians, comprising tapping each fruit, recording the response, and sorting the "
            "fruit by the estimated ripeness.",
        ),
        citations=(
            Cite("JP 2004-294123 A", "Y", (1, 5), "paragraphs [0011]-[0024]"),
            Cite("US 2016/0109345 A1", "A", (2, 4), "whole document"),
            Cite("Kongrattanaprasert W. et al., Acta Hortic. 1088 (2015) 193-198", "A", (3,), "section 3"),
        ),
        members=(
            Member("TH", "2201000321", "2022-02-03", published=("TH 2201000321 A", "2023-03-31")),
            # A priority chain: LA claims MY, which claims TH.
            Member("MY", "PI2023000456", "2023-02-01", ("TH 2201000321",),
                   published=("MY 199876 A", "2023-08-31"), deposits=(
                       Deposit("2023-11-14", (SR, Doc("er-1", "ER", (2, 3, 4)), CLAIMS)),
                   )),
            Member("LA", "LA/P/2024/000015", "2024-01-30", ("MY PI2023000456",)),
        ),
    ),
]

REQUESTS = [
    Request("SG 10202301234X", "MY PI2022001234", ("sr-1", "er-1", "claims-2"), "accepted", basis="priority"),
    Request("TH 2301001234", "MY PI2022001234", ("sr-1", "er-1", "claims-2"), "accepted", basis="priority"),
    Request("JP 2023-034567", "MY PI2022001234", ("sr-1", "er-1", "claims-2"), "rejected",
            ("NOT_PARTICIPANT",), basis="priority"),
    Request("VN 1-2023-01456", "MY PI2023002345", ("sr-1", "wo-1", "claims-1"), "accepted",
            basis="common_priority"),
    Request("TH 2301002345", "MY PI2023002345", ("sr-1", "wo-1", "claims-1"), "rejected",
            ("MISSING_MIN_DOCS",), basis="common_priority"),
    Request("ID P00202303456", "MY PI2023002345", ("sr-1", "wo-1", "claims-1"), "rejected",
            ("MISSING_CCT",), basis="common_priority"),
    Request("ID P00202303456", "MY PI2023002345", ("sr-1", "wo-1", "claims-1"), "accepted",
            basis="common_priority", claim_correspondence=((1, 4), (2, 5), (3, 6))),
    Request("VN 1-2025-04512", "SG PCT/SG2023/050123", ("isr-1", "woisa-1", "claims-1"), "accepted",
            basis="pct", route="PCT-ASPEC"),
    Request("MY PI2025000789", "JP PCT/JP2023/028765", ("isr-1", "woisa-1", "claims-1"), "rejected",
            ("NOT_PARTICIPANT", "ISA_NOT_ASEAN"), basis="common_priority", route="PCT-ASPEC"),
    Request("MY PI2026003456", "SG 10202505678W", ("sr-1", "wo-1", "claims-1"), "accepted", basis="priority"),
    Request("PH 1/2026/050789", "SG 10202505678W", ("sr-1", "er-1", "claims-2"), "withdrawn", basis="priority",
            withdraw=True),
    Request("TH 2301003789", "ID P00202200789", ("sr-1", "er-1", "claims-1"), "rejected",
            ("NOT_ENGLISH",), basis="priority"),
    Request("MY PI2023005678", "TH 2201004567", ("sr-1", "er-1", "claims-1"), "rejected",
            ("TOO_LATE",), basis="priority"),
    Request("MY PI2023006789", "PH 1/2022/050456", ("sr-1", "er-1", "claims-1"), "rejected",
            ("NO_ALLOWABLE_CLAIM",), basis="priority"),
    Request("SG 10202306123W", "VN 1-2022-04321", ("sr-1", "er-1"), "rejected", ("MISSING_CLAIMS",),
            basis="priority"),
    # SG reads MY's published reports (its 10202301234X corresponds) but relies on them for an
    # application of another family. A dossier the SO cannot see would read as unknown (422).
    Request("SG 10202306789P", "MY PI2022001234", ("sr-1", "er-1", "claims-2"), "rejected",
            ("NOT_CORRESPONDING",)),
    Request("LA LA/P/2024/000015", "MY PI2023000456", ("sr-1", "er-1", "claims-1"), "accepted", basis="priority"),
]


def members() -> list[tuple[Family, Member]]:
    return [(f, m) for f in FAMILIES for m in f.members]


def member(ref: str) -> tuple[Family, Member]:
    for f, m in members():
        if m.ref == ref:
            return f, m
    raise ValueError(f"no member {ref} in the demo data")
